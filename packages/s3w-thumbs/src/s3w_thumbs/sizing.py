"""Output size rule shared by every renderer: exact width, height as `pdftoppm` computes it."""

from __future__ import annotations

import math
import struct


def scaled_height(width: float, height: float, target_width: int) -> int:
    """Height in pixels of a `width` x `height` page drawn `target_width` pixels wide.

    This is the arithmetic `pdftoppm -scale-to-x W -scale-to-y -1` does (resolution
    `72 W / width`, then `ceil(height * resolution / 72)`), so both renderers agree to the pixel.
    """
    resolution = 72.0 * target_width / width
    return max(1, math.ceil(height * resolution / 72.0))


def from_float32(value: float) -> float:
    """The shortest decimal that a 32-bit float stands for.

    PDFium reports page boxes as 32-bit floats (595.28 arrives as 595.2800293); the PDF holds
    the short decimal, which is what poppler reads as a double. Recovering it keeps the
    height rule above identical between the renderers.
    """
    packed = struct.pack("<f", value)
    single = struct.unpack("<f", packed)[0]
    for digits in range(1, 10):
        candidate = float(f"{single:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return float(single)

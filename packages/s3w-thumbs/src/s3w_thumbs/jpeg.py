"""JPEG output: the encoder settings and the colour conversion every image passes through."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

# Quality 75, as pdftoppm and the earlier worker wrote: the look users know, and text stays
# legible at 100-200 px. Optimised Huffman tables make files ~6% smaller for a little encode
# time. Baseline, not progressive: progressive is ~10% smaller but costs 3-5x the encode time
# at 1600 px, more than drawing the page, and a baseline JPEG of a page still shows top-down.
QUALITY = 75
OPTIMIZE = True

_SRGB = ImageCms.createProfile("sRGB")
_BIT_DEPTH_16 = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def encode(image: Image.Image) -> bytes:
    """JPEG bytes of an `L`, `RGB` or `RGBX` image with the settings above."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=QUALITY, optimize=OPTIMIZE)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """Composite an image with transparency onto white."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    background.alpha_composite(rgba)
    return background.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit (or 32-bit integer, or float) greyscale to 8 bits instead of clipping it."""
    wide = image if image.mode in ("I", "F") else image.convert("I")
    extrema = wide.getextrema()
    high = float(extrema[1]) if isinstance(extrema[1], int | float) else 255.0
    if image.mode == "F" and high <= 1.0:
        scale = 255.0  # float images usually hold 0..1
    elif high <= 255:
        scale = 1.0
    elif high <= 65535:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0 / high
    return wide.point(lambda v: v * scale).convert("L")


def _icc_to_srgb(image: Image.Image, icc: bytes, mode: str) -> Image.Image | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=mode)
    except ImageCms.PyCMSError:
        return None  # a broken embedded profile: fall back to the plain conversion
    return converted


def to_displayable(image: Image.Image, *, keep_bilevel: bool = False) -> Image.Image:
    """The image as a browser would show it, in mode `L` or `RGB` (`1` too if asked).

    Transparency is composited onto white, CMYK goes through its embedded ICC profile when
    there is one, 16-bit and float greyscale is scaled (not clipped) to 8 bits, palettes expand.
    """
    mode = image.mode
    if mode in ("RGB", "L") or (keep_bilevel and mode == "1"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        return _flatten(image)
    if mode in _BIT_DEPTH_16 or mode.startswith("I;16") or mode == "F":
        return _to_8bit(image)
    if mode == "CMYK":
        icc = image.info.get("icc_profile")
        if icc:
            converted = _icc_to_srgb(image, icc, "RGB")
            if converted is not None:
                return converted
        return image.convert("RGB")
    return image.convert("RGB")

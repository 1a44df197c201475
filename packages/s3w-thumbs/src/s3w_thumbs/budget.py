"""Budgets for one document, checked before anything is allocated: pages, pixels, memory.

A file decides nothing about how much the worker allocates. Every render entry point asks
here first:

* :func:`check_pages`: a page count beyond ``S3W_MAX_PAGES`` (default 10,000) is refused;
* :func:`fit`: the bitmap for one page at one width, scaled down (aspect kept) until its height
  is at most JPEG's 65,500 rows and its area at most ``S3W_MAX_RENDER_PIXELS`` (40 million);
* :func:`check_image`: an image frame (every TIFF frame, before it is decoded) larger than the
  same pixel budget is refused; :func:`pillow_guard` sets Pillow's ``MAX_IMAGE_PIXELS`` from it
  and turns ``DecompressionBombWarning`` into the same refusal, and ``MemoryError`` into one
  line instead of a crash;
* :func:`limited`: the address-space ceiling (``S3W_RENDER_MEMORY_LIMIT`` MiB, default
  512) a renderer subprocess (``pdftoppm``, ``pdfinfo``) runs under.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from s3w_thumbs.errors import DocumentTooLarge, InvalidSetting

#: The tallest (and widest) JPEG libjpeg writes.
JPEG_MAX_SIDE: Final = 65_500
DEFAULT_MAX_PAGES: Final = 10_000
DEFAULT_MAX_PIXELS: Final = 40_000_000
DEFAULT_MEMORY_LIMIT_MIB: Final = 512


@dataclass(frozen=True)
class Budget:
    max_pages: int = DEFAULT_MAX_PAGES
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: Bytes of address space a renderer subprocess may use (0: no ceiling).
    memory_limit: int = DEFAULT_MEMORY_LIMIT_MIB << 20


def _whole(name: str, default: int, low: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = low - 1
    if value < low:
        raise InvalidSetting(f"{name}={raw!r} must be a whole number of at least {low}")
    return value


@lru_cache(maxsize=1)
def get_budget() -> Budget:
    """The budget from the environment, read on first use (``get_budget.cache_clear()``)."""
    return Budget(
        max_pages=_whole("S3W_MAX_PAGES", DEFAULT_MAX_PAGES, 1),
        max_pixels=_whole("S3W_MAX_RENDER_PIXELS", DEFAULT_MAX_PIXELS, 10_000),
        memory_limit=_whole("S3W_RENDER_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT_MIB, 0) << 20,
    )


def check_pages(name: str, count: int) -> int:
    """``count`` when within ``S3W_MAX_PAGES``, else :class:`DocumentTooLarge`."""
    limit = get_budget().max_pages
    if count > limit:
        raise DocumentTooLarge(
            f"{name}: the PDF says it has {count:,} pages, more than S3W_MAX_PAGES={limit:,}; "
            "split it, or raise S3W_MAX_PAGES if it is genuine"
        )
    return count


def fit(width: int, height: int) -> tuple[int, int]:
    """The bitmap size to draw a ``width`` x ``height`` render at: unchanged when within
    the budget, else scaled down (aspect kept, each side at least 1 pixel)."""
    limit = get_budget().max_pixels
    scale = min(
        1.0, JPEG_MAX_SIDE / height, JPEG_MAX_SIDE / width, math.sqrt(limit / (width * height))
    )
    if scale >= 1.0:
        return width, height
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def check_image(name: str, size: tuple[int, int], frame: int = 1) -> None:
    """Refuse an image frame whose decoded size exceeds the pixel budget (call before
    decoding it: after ``open`` and after every ``seek``)."""
    width, height = size
    limit = get_budget().max_pixels
    if width * height > limit:
        where = f" (page {frame})" if frame > 1 else ""
        raise DocumentTooLarge(
            f"{name}{where}: the image is {width:,} x {height:,} pixels, more than "
            f"S3W_MAX_RENDER_PIXELS={limit:,}; scale it down before uploading"
        )


@contextmanager
def pillow_guard(name: str) -> Iterator[None]:
    """Pillow's bomb limit from the budget, its bomb warning as an error, and both (and a
    ``MemoryError``) as :class:`DocumentTooLarge`."""
    from PIL import Image

    limit = get_budget().max_pixels
    Image.MAX_IMAGE_PIXELS = limit
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise DocumentTooLarge(
                f"{name}: the image has more pixels than S3W_MAX_RENDER_PIXELS={limit:,}"
            ) from error
        except MemoryError as error:
            raise out_of_memory(name) from error


def out_of_memory(name: str) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"{name}: rendering ran out of memory; the file is too large to preview "
        "(S3W_MAX_RENDER_PIXELS, S3W_RENDER_MEMORY_LIMIT)"
    )


def limited(args: list[str]) -> list[str]:
    """``args`` run under the renderer's address-space ceiling (``S3W_RENDER_MEMORY_LIMIT``):
    through ``sh``'s ``ulimit -v``, which keeps the spawn a cheap vfork where a ``preexec_fn``
    would make Python fork the whole worker for every page (measured: several ms a run)."""
    limit = get_budget().memory_limit
    if not limit:
        return args
    return ["sh", "-c", f'ulimit -v {max(1, limit // 1024)} && exec "$0" "$@"', *args]

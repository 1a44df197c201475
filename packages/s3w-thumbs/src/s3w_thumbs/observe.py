"""An optional observer of each page rendered (the worker's metrics use it).

A higher layer registers one callable with :func:`set_observer`; every page drawn by the
public rendering calls is then reported as ``observer(kind, renderer, seconds, pixels)``:
the input's kind (``pdf``, ``jpeg``, ``png``, ``tiff``), the renderer (``pdfium``,
``poppler`` or ``pillow`` for images), the seconds spent drawing and encoding the page at
every requested width, and the pixels of the JPEGs made. With no observer set, pages are
not timed.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

Observer = Callable[[str, str, float, int], None]
T = TypeVar("T", bound=list[bytes])

_observer: Observer | None = None


def set_observer(observer: Observer | None) -> None:
    """Report every rendered page to ``observer`` (``None`` stops reporting)."""
    global _observer
    _observer = observer


def jpeg_pixels(images: list[bytes]) -> int:
    """Width x height summed over JPEGs (their headers only are read)."""
    from PIL import Image

    total = 0
    for data in images:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        total += width * height
    return total


def timed(pages: Iterator[T], kind: str, renderer: str) -> Iterator[T]:
    """``pages`` as they are drawn, each reported to the observer (when one is set)."""
    while True:
        observer = _observer
        started = time.perf_counter()
        page = next(pages, None)
        if page is None:
            return
        if observer is not None:
            observer(kind, renderer, time.perf_counter() - started, jpeg_pixels(page))
        yield page

"""PDF pages to JPEG in-process with PDFium (PyPI `pypdfium2`), one open per job.

PDFium is not thread-safe: two threads in it at once can crash the process (seen with
`s3w generate-doc-thumbnails --jobs 2`). Every PDFium call here runs under one process-wide
lock, and every PDFium object is closed explicitly under it rather than left to a garbage
collector that may run in another thread. Rendering in parallel takes processes (the
worker's prefork pool); threads still overlap everything around it (reads, uploads) and
the drawing of scanned pages from their image (scanned.py), which needs no PDFium and so
runs outside the lock.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

from s3w_thumbs import budget, jpeg, scanned
from s3w_thumbs.deadline import Deadline
from s3w_thumbs.errors import CorruptDocument, EncryptedDocument, PageOutOfRange
from s3w_thumbs.sizing import from_float32, scaled_height

NAME = "pdfium"
_LOCK = threading.RLock()


def load() -> Any:
    """Import pypdfium2 (raises ImportError when it is not installed)."""
    import pypdfium2

    return pypdfium2


def _open(path: Path) -> Any:
    pdfium = load()
    raw = pdfium.raw
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as error:
        code = getattr(error, "err_code", None)
        if code in (raw.FPDF_ERR_PASSWORD, raw.FPDF_ERR_SECURITY):
            raise EncryptedDocument(
                f"{path.name}: the PDF is password-protected; upload a copy without a password"
            ) from error
        raise CorruptDocument(
            f"{path.name}: PDFium cannot read this PDF ({error}); it may be damaged or truncated"
        ) from error


def page_count(path: Path) -> int:
    """The page count, trusted only within the budget and when the last page loads."""
    with _LOCK:
        document = _open(path)
        try:
            count = budget.check_pages(path.name, len(document))
            if count:
                _last_page_loads(document, path, count)
            return count
        finally:
            document.close()


def _last_page_loads(document: Any, path: Path, count: int) -> None:
    pdfium = load()
    try:
        document[count - 1].close()
    except pdfium.PdfiumError as error:
        raise CorruptDocument(
            f"{path.name}: the PDF says it has {count:,} pages but page {count:,} cannot be "
            "loaded; it is damaged (its page count is a lie)"
        ) from error


def _draw(page: Any, width: int, height: int, deadline: Deadline) -> bytes:
    """`page` drawn into a `width` x `height` RGBX bitmap, pausing to check the deadline,
    as JPEG bytes."""
    pdfium = load()
    raw = pdfium.raw
    # 4-byte RGBx: PDFium's native layout (a little faster to draw), and Pillow wraps the
    # buffer without copying it and encodes RGBX to JPEG directly.
    bitmap = pdfium.PdfBitmap.new_native(width, height, raw.FPDFBitmap_BGRx, rev_byteorder=True)
    bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
    pause = raw.IFSDK_PAUSE(version=1)
    # PDFium asks this between batches of page objects; True makes it return so we can stop.
    callback = type(pause.NeedToPauseNow)(lambda _pause: int(deadline.expired()))
    pause.NeedToPauseNow = callback
    flags = raw.FPDF_ANNOT | raw.FPDF_REVERSE_BYTE_ORDER
    try:
        try:
            status = raw.FPDF_RenderPageBitmap_Start(
                bitmap, page, 0, 0, width, height, 0, flags, ctypes.byref(pause)
            )
            while status == raw.FPDF_RENDER_TOBECONTINUED:
                deadline.check()
                status = raw.FPDF_RenderPage_Continue(page, ctypes.byref(pause))
        finally:
            raw.FPDF_RenderPage_Close(page)
        if status == raw.FPDF_RENDER_DONE:
            return jpeg.encode(bitmap.to_pil())
    finally:
        bitmap.close()
    raise CorruptDocument(f"{deadline.what}: PDFium failed to render the page")


def _load_page(document: Any, path: Path, page_number: int) -> Any:
    pdfium = load()
    count = len(document)
    if count == 0:
        raise CorruptDocument(f"{path.name}: the PDF has no pages")
    if page_number > count:
        raise PageOutOfRange(
            f"{path.name}: page {page_number} asked for, the document has {count}",
            page_number=page_number,
            page_count=count,
        )
    try:
        return document[page_number - 1]
    except pdfium.PdfiumError as error:
        raise CorruptDocument(
            f"{path.name}: page {page_number} cannot be loaded ({error})"
        ) from error


def _sizes(page: Any, path: Path, page_number: int, widths: Sequence[int]) -> list[tuple[int, int]]:
    """Each width x height to draw, every bitmap within the pixel budget (on either path)
    before anything is allocated."""
    page_width = from_float32(page.get_width())
    page_height = from_float32(page.get_height())
    if not (page_width > 0 and page_height > 0):
        raise CorruptDocument(f"{path.name}: page {page_number} has an empty page box")
    return [budget.fit(width, scaled_height(page_width, page_height, width)) for width in widths]


def _render_page(
    document: Any, path: Path, page_number: int, widths: Sequence[int], deadline: Deadline
) -> list[bytes]:
    """One page at each width. Takes the lock for each PDFium step and lets go of it while
    a scanned page is drawn from its image, which needs no PDFium: another thread can
    render meanwhile."""
    with _LOCK:
        page = _load_page(document, path, page_number)
    try:
        with _LOCK:
            sizes = _sizes(page, path, page_number, widths)
            fast = scanned.plan(page, path)
        widths = [width for width, _ in sizes]
        heights = [height for _, height in sizes]
        drawn = scanned.render(fast, widths, heights, deadline) if fast is not None else None
        if drawn is not None:
            return drawn
        out = []
        for width, height in sizes:
            deadline.check()
            with _LOCK:
                out.append(_draw(page, width, height, deadline))
        return out
    finally:
        with _LOCK:
            page.close()


def render(path: Path, page_number: int, widths: Sequence[int], deadline: Deadline) -> list[bytes]:
    """JPEGs of one page at each width, drawn directly at that width (no resampling)."""
    with _LOCK:
        document = _open(path)
    try:
        return _render_page(document, path, page_number, widths, deadline)
    finally:
        with _LOCK:
            document.close()


def render_pages(
    path: Path,
    page_numbers: Sequence[int],
    widths: Sequence[int],
    deadline_for: Callable[[int], Deadline],
) -> Generator[list[bytes], None, None]:
    """Like `render` for several pages, opening the document once for all of them (the
    lock is held per PDFium step, not while the caller works between pages)."""
    with _LOCK:
        document = _open(path)
    try:
        for number in page_numbers:
            yield _render_page(document, path, number, widths, deadline_for(number))
    finally:
        with _LOCK:
            document.close()

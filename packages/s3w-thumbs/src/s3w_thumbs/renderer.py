"""Which PDF renderer a job uses: `auto` (PDFium when it imports, else poppler), or forced."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from s3w_thumbs import render_pdfium, render_poppler
from s3w_thumbs.deadline import Deadline
from s3w_thumbs.errors import RendererUnavailable
from s3w_thumbs.settings import check_renderer, get_settings


@dataclass(frozen=True)
class PdfRenderer:
    """A PDF renderer: its name, how it renders a page at widths, how it counts pages."""

    name: str
    render: Callable[[Path, int, Sequence[int], Deadline], list[bytes]]
    render_pages: Callable[
        [Path, Sequence[int], Sequence[int], Callable[[int], Deadline]],
        Generator[list[bytes], None, None],
    ]
    page_count: Callable[[Path, Deadline], int]


def _pdfium_page_count(path: Path, deadline: Deadline) -> int:
    return render_pdfium.page_count(path)


def _poppler_pages(
    path: Path,
    page_numbers: Sequence[int],
    widths: Sequence[int],
    deadline_for: Callable[[int], Deadline],
) -> Generator[list[bytes], None, None]:
    # Each pdftoppm run opens the file anyway; there is nothing to share between pages.
    for number in page_numbers:
        yield render_poppler.render(path, number, widths, deadline_for(number))


PDFIUM = PdfRenderer(
    render_pdfium.NAME, render_pdfium.render, render_pdfium.render_pages, _pdfium_page_count
)
POPPLER = PdfRenderer(
    render_poppler.NAME, render_poppler.render, _poppler_pages, render_poppler.page_count
)


def pdfium_available() -> bool:
    try:
        render_pdfium.load()
    except ImportError:
        return False
    return True


def choose_renderer(name: str | None = None) -> PdfRenderer:
    """The renderer for `name` (default: the `S3W_THUMBS_RENDERER` setting)."""
    choice = check_renderer(name) if name is not None else get_settings().renderer
    if choice == "poppler":
        return POPPLER
    if pdfium_available():
        return PDFIUM
    if choice == "pdfium":
        raise RendererUnavailable(
            "the pdfium renderer needs the pypdfium2 package (pip install pypdfium2), "
            "or set S3W_THUMBS_RENDERER=poppler"
        )
    return POPPLER


def active_renderer(name: str | None = None) -> str:
    """Name of the renderer `name` resolves to here: `pdfium` or `poppler`."""
    return choose_renderer(name).name

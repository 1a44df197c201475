"""The public rendering calls: thumbnail, page previews, page count."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path

from s3w_thumbs import budget, observe, render_image
from s3w_thumbs.deadline import Deadline
from s3w_thumbs.errors import CorruptDocument, InvalidSetting, PageOutOfRange
from s3w_thumbs.kinds import Kind, Source, detect_kind
from s3w_thumbs.renderer import choose_renderer
from s3w_thumbs.settings import check_renderer, check_width, get_settings

Sizes = Mapping[str, int] | Iterable[str]


def _check_page_number(path: Path, page_number: int) -> None:
    if isinstance(page_number, bool) or not isinstance(page_number, int) or page_number < 1:
        raise PageOutOfRange(
            f"{path.name}: page numbers start at 1, got {page_number!r}",
            page_number=page_number if isinstance(page_number, int) else 0,
            page_count=None,
        )


def _render_pages(
    source: Source, page_numbers: Sequence[int], widths: dict[str, int], renderer: str | None
) -> Generator[tuple[int, dict[str, bytes]], None, None]:
    path = Path(source)
    for number in page_numbers:
        _check_page_number(path, number)
    if renderer is not None:
        check_renderer(renderer)
    kind = detect_kind(path)
    timeout = get_settings().render_timeout

    def deadline_for(number: int) -> Deadline:
        return Deadline(timeout, f"{path.name} page {number}")

    unique = sorted(set(widths.values()))
    if kind is Kind.PDF:
        chosen = choose_renderer(renderer)
        renderer_name = chosen.name
        pages = chosen.render_pages(path, page_numbers, unique, deadline_for)
    else:
        renderer_name = "pillow"
        pages = (render_image.render(path, n, unique, deadline_for(n)) for n in page_numbers)
    with closing(pages):  # closes the document even when the caller stops early
        drawn = observe.timed(pages, kind.value, renderer_name)
        try:
            for number, images in zip(page_numbers, drawn, strict=True):
                by_width = dict(zip(unique, images, strict=True))
                yield number, {name: by_width[width] for name, width in widths.items()}
        except MemoryError as error:  # past the budget's checks: still one clear line
            raise budget.out_of_memory(path.name) from error


def _render(
    source: Source, page_number: int, widths: dict[str, int], renderer: str | None
) -> dict[str, bytes]:
    with closing(_render_pages(source, [page_number], widths, renderer)) as pages:
        return next(pages)[1]


def render_thumbnail(
    source: Source, width: int | None = None, renderer: str | None = None
) -> bytes:
    """JPEG of page 1, `width` px wide (default `PM_THUMBNAIL_SIZE`, 100), aspect kept."""
    chosen = get_settings().thumbnail_width if width is None else check_width(width)
    return _render(source, 1, {"thumbnail": chosen}, renderer)["thumbnail"]


def preview_widths(sizes: Sizes | None = None) -> dict[str, int]:
    """Names to widths: all of `PM_PREVIEW_PAGE_SIZE_*`, some of them by name, or explicit."""
    configured = get_settings().preview_widths
    if sizes is None:
        return dict(configured)
    if isinstance(sizes, str):
        sizes = [sizes]
    if isinstance(sizes, Mapping):
        return {str(name): check_width(width, str(name)) for name, width in sizes.items()}
    chosen = {}
    for name in sizes:
        if name not in configured:
            raise InvalidSetting(f"unknown preview size {name!r}; known: {', '.join(configured)}")
        chosen[name] = configured[name]
    return chosen


def render_page_previews(
    source: Source,
    page_number: int,
    sizes: Sizes | None = None,
    renderer: str | None = None,
) -> dict[str, bytes]:
    """JPEGs of one page keyed `sm`/`md`/`lg`/`xl` (or the names in `sizes`).

    `sizes` is None (all four, widths from `PM_PREVIEW_PAGE_SIZE_*`), some of those names,
    or a mapping of name to width. The document is opened once and each width drawn directly.
    """
    widths = preview_widths(sizes)
    if not widths:
        return {}
    return _render(source, page_number, widths, renderer)


def iter_page_previews(
    source: Source,
    page_numbers: Iterable[int],
    sizes: Sizes | None = None,
    renderer: str | None = None,
) -> Iterator[tuple[int, dict[str, bytes]]]:
    """`(page_number, previews)` for several pages, the document opened once for them all.

    Rendering is lazy: each page is drawn when the loop reaches it, and the document stays
    open until the loop ends (or the iterator is closed).
    """
    numbers = list(page_numbers)
    widths = preview_widths(sizes)
    if not numbers:
        return iter(())
    if not widths:
        return iter([(n, {}) for n in numbers])
    return _render_pages(source, numbers, widths, renderer)


def page_count(source: Source) -> int:
    """Pages in a PDF, or frames in an image (1 except for multi-page TIFF)."""
    path = Path(source)
    if detect_kind(path) is Kind.PDF:
        deadline = Deadline(get_settings().render_timeout, f"{path.name} page count")
        count = choose_renderer().page_count(path, deadline)
        if count < 1:
            raise CorruptDocument(f"{path.name}: the PDF has no pages")
        return count
    return render_image.page_count(path)

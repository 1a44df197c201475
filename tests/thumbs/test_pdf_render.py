"""PDF pages through both renderers: exact sizes, upright layout, and agreement between them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from tests.thumbs.checks import (
    assert_layout,
    assert_not_blank,
    assert_size,
    difference,
    jpeg_image,
)
from tests.thumbs.conftest import PDF_CASES
from tests.thumbs.documents import PageSpec

import s3w_thumbs

RENDERERS = ["pdfium", "poppler"]
PREVIEW_WIDTHS = {"sm": 200, "md": 600, "lg": 900, "xl": 1600}
# Two renderers anti-alias differently; the same page drawn by both differs by a few grey
# levels on average, a wrong page or orientation by tens.
SAME_PAGE = 6.0


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("case", list(PDF_CASES))
def test_thumbnail_is_100px_wide_upright_jpeg(
    pdf_files: dict[str, Path], case: str, renderer: str
) -> None:
    spec = PDF_CASES[case][0]
    image = jpeg_image(s3w_thumbs.render_thumbnail(pdf_files[case], renderer=renderer))
    assert_size(image, 100, *spec.shown_size())
    assert_not_blank(image)
    assert_layout(image, spec.rotate)


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("case", list(PDF_CASES))
def test_previews_have_the_four_documented_widths(
    pdf_files: dict[str, Path], case: str, renderer: str
) -> None:
    spec = PDF_CASES[case][0]
    previews = s3w_thumbs.render_page_previews(pdf_files[case], 1, renderer=renderer)
    assert list(previews) == ["sm", "md", "lg", "xl"]
    for name, width in PREVIEW_WIDTHS.items():
        image = jpeg_image(previews[name])
        assert_size(image, width, *spec.shown_size())
        assert_not_blank(image)
        assert_layout(image, spec.rotate)


@pytest.mark.parametrize("case", list(PDF_CASES))
def test_renderers_agree_on_size_and_look(pdf_files: dict[str, Path], case: str) -> None:
    by_pdfium = s3w_thumbs.render_page_previews(pdf_files[case], 1, renderer="pdfium")
    by_poppler = s3w_thumbs.render_page_previews(pdf_files[case], 1, renderer="poppler")
    for name in PREVIEW_WIDTHS:
        a, b = jpeg_image(by_pdfium[name]), jpeg_image(by_poppler[name])
        assert a.size == b.size, f"{name}: pdfium drew {a.size}, poppler {b.size}"
        diff = difference(a, b)
        assert diff < SAME_PAGE, f"{name}: mean grey difference {diff:.1f} >= {SAME_PAGE}"


def test_thirty_page_document(thirty_pages: tuple[Path, list[PageSpec]]) -> None:
    path, specs = thirty_pages
    assert s3w_thumbs.page_count(path) == 30
    for number in (1, 7, 10, 15, 30):
        spec = specs[number - 1]
        outputs = {
            renderer: s3w_thumbs.render_page_previews(path, number, renderer=renderer)
            for renderer in RENDERERS
        }
        for name, width in PREVIEW_WIDTHS.items():
            images = [jpeg_image(outputs[renderer][name]) for renderer in RENDERERS]
            for image in images:
                assert_size(image, width, *spec.shown_size())
                assert_layout(image, spec.rotate)
            assert images[0].size == images[1].size, f"page {number} {name}: sizes differ"


def test_thirty_page_document_page_count_with_poppler(
    thirty_pages: tuple[Path, list[PageSpec]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3W_THUMBS_RENDERER", "poppler")
    assert s3w_thumbs.page_count(thirty_pages[0]) == 30


def test_sizes_by_name_and_explicit_widths(pdf_files: dict[str, Path]) -> None:
    path = pdf_files["a4-portrait"]
    only = s3w_thumbs.render_page_previews(path, 1, sizes=["sm", "xl"])
    assert sorted(only) == ["sm", "xl"]
    assert jpeg_image(only["xl"]).width == 1600
    custom = s3w_thumbs.render_page_previews(path, 1, sizes={"tiny": 37, "same": 37})
    assert jpeg_image(custom["tiny"]).width == 37
    assert custom["tiny"] == custom["same"]


@pytest.mark.parametrize("renderer", RENDERERS)
def test_explicit_thumbnail_width(pdf_files: dict[str, Path], renderer: str) -> None:
    image = jpeg_image(
        s3w_thumbs.render_thumbnail(pdf_files["letter-landscape"], width=333, renderer=renderer)
    )
    assert_size(image, 333, 792.0, 612.0)


def test_widths_come_from_the_environment(
    pdf_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_THUMBNAIL_SIZE", "120")
    monkeypatch.setenv("PM_PREVIEW_PAGE_SIZE_MD", "640")
    path = pdf_files["a4-portrait"]
    assert jpeg_image(s3w_thumbs.render_thumbnail(path)).width == 120
    previews = s3w_thumbs.render_page_previews(path, 1)
    assert [jpeg_image(previews[n]).width for n in ("sm", "md", "lg", "xl")] == [
        200,
        640,
        900,
        1600,
    ]


def test_both_renderers_encode_alike(pdf_files: dict[str, Path]) -> None:
    """Same quantisation tables (quality 75), baseline, at every size from both renderers."""
    reference = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(reference, format="JPEG", quality=75)
    tables = Image.open(reference).quantization
    for renderer in RENDERERS:
        previews = s3w_thumbs.render_page_previews(pdf_files["a4-portrait"], 1, renderer=renderer)
        for name, data in previews.items():
            image = jpeg_image(data)
            assert image.quantization == tables, f"{renderer} {name}: not quality 75"
            assert not image.info.get("progressive"), f"{renderer} {name}: progressive"


def test_pdfium_from_many_threads_gives_what_one_thread_gives(
    pdf_files: dict[str, Path], thirty_pages: tuple[Path, list[PageSpec]]
) -> None:
    """PDFium is not thread-safe (two threads in it at once crashed
    ``s3w generate-doc-thumbnails --jobs 2``): the renderer serialises its calls, so threads
    get exactly the bytes a single thread gets, and the process survives."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(path, 1) for path in pdf_files.values()] + [(thirty_pages[0], n) for n in (3, 17)]

    def one(job: tuple[Path, int]) -> tuple[bytes, dict[str, bytes], int]:
        path, page = job
        return (
            s3w_thumbs.render_thumbnail(path, renderer="pdfium"),
            s3w_thumbs.render_page_previews(path, page, renderer="pdfium"),
            s3w_thumbs.page_count(path),
        )

    alone = [one(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(one, jobs * 6))
    assert together == alone * 6

"""Several pages in one call: the document is opened once and pages come out lazily, in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.thumbs.checks import jpeg_image
from tests.thumbs.documents import PageSpec

import s3w_thumbs


@pytest.mark.parametrize("renderer", ["pdfium", "poppler"])
def test_same_output_as_one_page_at_a_time(
    thirty_pages: tuple[Path, list[PageSpec]], renderer: str
) -> None:
    path, _ = thirty_pages
    numbers = [30, 1, 15]
    got = list(s3w_thumbs.iter_page_previews(path, numbers, ["sm", "md"], renderer))
    assert [n for n, _ in got] == numbers
    for number, previews in got:
        single = s3w_thumbs.render_page_previews(path, number, ["sm", "md"], renderer)
        assert previews.keys() == single.keys()
        for name in previews:
            assert jpeg_image(previews[name]).size == jpeg_image(single[name]).size
            if renderer == "pdfium":  # deterministic in-process: byte for byte the same
                assert previews[name] == single[name], f"page {number} {name} differs"


def test_stops_at_the_first_bad_page(thirty_pages: tuple[Path, list[PageSpec]]) -> None:
    pages = s3w_thumbs.iter_page_previews(thirty_pages[0], [2, 31, 3], ["sm"])
    number, previews = next(pages)
    assert number == 2
    assert jpeg_image(previews["sm"]).width == 200
    with pytest.raises(s3w_thumbs.PageOutOfRange, match="page 31 asked for, the document has 30"):
        next(pages)


def test_bad_page_number_is_refused_before_rendering(
    thirty_pages: tuple[Path, list[PageSpec]],
) -> None:
    with pytest.raises(s3w_thumbs.PageOutOfRange, match="start at 1"):
        next(s3w_thumbs.iter_page_previews(thirty_pages[0], [1, 0]))


def test_tiff_pages(image_files: dict[str, Path]) -> None:
    got = dict(s3w_thumbs.iter_page_previews(image_files["pages3.tif"], [3, 2, 1], ["sm"]))
    assert sorted(got) == [1, 2, 3]
    assert all(jpeg_image(p["sm"]).size == (200, 267) for p in got.values())


def test_nothing_asked_for(thirty_pages: tuple[Path, list[PageSpec]]) -> None:
    assert list(s3w_thumbs.iter_page_previews(thirty_pages[0], [])) == []

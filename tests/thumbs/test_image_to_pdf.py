"""Image uploads to PDF: page counts, JPEG data kept byte for byte, result renders upright."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.thumbs.checks import assert_size, assert_upright_layout, jpeg_image

import s3w_thumbs


def _jpeg_scan_data(path: Path) -> bytes:
    """The entropy-coded data after the last start-of-scan header: what a re-encode changes."""
    data = path.read_bytes()
    return data[data.rindex(b"\xff\xda") : data.rindex(b"\xff\xd9")]


@pytest.mark.parametrize("renderer", ["pdfium", "poppler"])
@pytest.mark.parametrize(
    ("name", "pages", "shown"),
    [
        ("rgb.jpg", 1, (640, 480)),
        ("exif6.jpg", 1, (640, 480)),
        ("cmyk.jpg", 1, (640, 480)),
        ("rgb.png", 1, (500, 300)),
        ("alpha.png", 1, (400, 400)),
        ("palette.png", 1, (500, 300)),
        ("pages3.tif", 3, (480, 640)),
        ("bilevel.tif", 1, (800, 1000)),
    ],
)
def test_converts_and_renders(
    tmp_path: Path,
    image_files: dict[str, Path],
    name: str,
    pages: int,
    shown: tuple[int, int],
    renderer: str,
) -> None:
    dest = tmp_path / "out" / f"{name}.pdf"
    assert s3w_thumbs.image_to_pdf(image_files[name], dest) == pages
    assert s3w_thumbs.detect_kind(dest) == "pdf"
    assert s3w_thumbs.page_count(dest) == pages
    assert not [p for p in dest.parent.iterdir() if p != dest], "expected no temporary files left"
    for number in range(1, pages + 1):
        image = jpeg_image(s3w_thumbs.render_page_previews(dest, number, ["sm"], renderer)["sm"])
        assert_size(image, 200, *shown)
        if number == 1:
            assert_upright_layout(image, band="dark" if name == "bilevel.tif" else "red")


@pytest.mark.parametrize("name", ["rgb.jpg", "exif6.jpg", "cmyk.jpg", "grey.jpg"])
def test_jpeg_is_embedded_unchanged(
    tmp_path: Path, image_files: dict[str, Path], name: str
) -> None:
    dest = tmp_path / "out.pdf"
    s3w_thumbs.image_to_pdf(image_files[name], dest)
    assert _jpeg_scan_data(image_files[name]) in dest.read_bytes(), "JPEG data was re-encoded"


def test_refuses_pdf_and_replaces_dest(tmp_path: Path, pdf_files: dict[str, Path]) -> None:
    with pytest.raises(s3w_thumbs.UnsupportedInput, match="already a PDF"):
        s3w_thumbs.image_to_pdf(pdf_files["a4-portrait"], tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()


def test_damaged_image_leaves_no_file(tmp_path: Path, image_files: dict[str, Path]) -> None:
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(image_files["rgb.jpg"].read_bytes()[:300])
    with pytest.raises(s3w_thumbs.CorruptDocument):
        s3w_thumbs.image_to_pdf(cut, tmp_path / "cut.pdf")
    assert not (tmp_path / "cut.pdf").exists()

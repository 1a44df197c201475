"""Images Papermerge accepts (JPEG, PNG, TIFF incl. multi-page) to upright sRGB JPEGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.thumbs.checks import (
    assert_not_blank,
    assert_size,
    assert_upright_layout,
    is_light,
    jpeg_image,
    region,
)

import s3w_thumbs

# file -> (width, height as a viewer shows it)
SHOWN = {
    "rgb.jpg": (640, 480),
    "exif6.jpg": (640, 480),
    "cmyk.jpg": (640, 480),
    "grey.jpg": (600, 800),
    "rgb.png": (500, 300),
    "palette.png": (500, 300),
    "pages3.tif": (480, 640),
    "bilevel.tif": (800, 1000),
}


@pytest.mark.parametrize("name", list(SHOWN))
def test_image_previews_upright_at_every_width(image_files: dict[str, Path], name: str) -> None:
    previews = s3w_thumbs.render_page_previews(image_files[name], 1)
    thumbnail = s3w_thumbs.render_thumbnail(image_files[name])
    for data, width in [(thumbnail, 100)] + [
        (previews[n], w) for n, w in (("sm", 200), ("md", 600), ("lg", 900), ("xl", 1600))
    ]:
        image = jpeg_image(data)
        assert_size(image, width, *SHOWN[name])
        assert_not_blank(image)
        # Colour survives for colour inputs; greyscale and bilevel keep a dark band.
        colour = name not in ("grey.jpg", "bilevel.tif")
        assert_upright_layout(image, band="red" if colour else "dark")


def test_transparent_png_is_composited_on_white(image_files: dict[str, Path]) -> None:
    image = jpeg_image(s3w_thumbs.render_thumbnail(image_files["alpha.png"], width=200))
    assert image.size == (200, 200)
    assert_upright_layout(image)
    middle = region(image, 0.4, 0.4, 0.9, 0.7)
    assert is_light(middle), f"expected white where the PNG is transparent, saw {middle}"


@pytest.mark.parametrize("name", ["grey16.png", "grey16.tif"])
def test_16bit_greyscale_is_scaled_not_clipped(image_files: dict[str, Path], name: str) -> None:
    image = jpeg_image(s3w_thumbs.render_thumbnail(image_files[name], width=256))
    assert_size(image, 256, 512, 256)
    grey = image.convert("L")
    left, right = grey.getpixel((70, 100)), grey.getpixel((200, 100))
    # 20000..65535 across the width: clipping to 8 bits would make all of it white (255);
    # scaled, x=70 is about 32500/257 = 126 and x=200 about 55600/257 = 216.
    assert isinstance(left, int), left
    assert isinstance(right, int), right
    assert 100 < left < 150, f"expected mid grey at x=70, saw {left}"
    assert 190 < right < 240, f"expected light grey at x=200, saw {right}"
    assert grey.getpixel((10, 10)) == pytest.approx(0, abs=30), "expected the black block"


def test_multipage_tiff_pages(image_files: dict[str, Path]) -> None:
    path = image_files["pages3.tif"]
    assert s3w_thumbs.page_count(path) == 3
    expected = {1: "red", 2: "green", 3: "blue"}
    for number, colour in expected.items():
        image = jpeg_image(s3w_thumbs.render_page_previews(path, number, sizes=["sm"])["sm"])
        assert_size(image, 200, 480, 640)
        r, g, b = region(image, 0.3, 0.85, 0.98, 0.98)
        strongest = {"red": r, "green": g, "blue": b}
        assert max(strongest, key=lambda k: strongest[k]) == colour, (
            f"page {number}: expected a {colour} band, saw {(r, g, b)}"
        )
    with pytest.raises(s3w_thumbs.PageOutOfRange, match="page 4 asked for, the image has 3"):
        s3w_thumbs.render_page_previews(path, 4)


def test_single_images_have_one_page(image_files: dict[str, Path]) -> None:
    for name in ("rgb.jpg", "rgb.png", "bilevel.tif"):
        assert s3w_thumbs.page_count(image_files[name]) == 1, name
    with pytest.raises(s3w_thumbs.PageOutOfRange):
        s3w_thumbs.render_page_previews(image_files["rgb.png"], 2)


def test_renderer_choice_does_not_matter_for_images(image_files: dict[str, Path]) -> None:
    by_pdfium = s3w_thumbs.render_thumbnail(image_files["rgb.png"], renderer="pdfium")
    by_poppler = s3w_thumbs.render_thumbnail(image_files["rgb.png"], renderer="poppler")
    assert by_pdfium == by_poppler


@pytest.mark.parametrize(
    ("name", "kind"),
    [("rgb.jpg", "jpeg"), ("rgb.png", "png"), ("pages3.tif", "tiff"), ("bilevel.tif", "tiff")],
)
def test_detect_kind_reads_the_bytes(image_files: dict[str, Path], name: str, kind: str) -> None:
    renamed = image_files[name].with_suffix(".bin")
    renamed.write_bytes(image_files[name].read_bytes())
    assert s3w_thumbs.detect_kind(renamed) == kind
    assert s3w_thumbs.detect_kind(renamed).mime_type == f"image/{kind}"

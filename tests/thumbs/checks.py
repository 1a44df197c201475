"""Assertions on rendered JPEGs: format, size, content, where the layout's parts landed."""

from __future__ import annotations

import io

from PIL import Image, ImageChops, ImageStat

# A page of the test layout has a standard deviation of grey levels far above this; a blank
# (all white or all one colour) render has almost none.
MIN_STDDEV = 15.0


def jpeg_image(data: bytes) -> Image.Image:
    """Decode `data`, failing unless it is a complete, valid JPEG."""
    assert isinstance(data, bytes), f"expected bytes, got {type(data).__name__}"
    assert data[:3] == b"\xff\xd8\xff", f"expected a JPEG start marker, got {data[:8]!r}"
    assert data.rstrip(b"\x00")[-2:] == b"\xff\xd9", "expected a JPEG end marker at the end"
    with Image.open(io.BytesIO(data)) as probe:
        probe.verify()
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "JPEG", f"expected JPEG, Pillow reads {image.format}"
    assert image.mode in ("RGB", "L"), f"expected an RGB or greyscale JPEG, got {image.mode}"
    return image


def assert_size(image: Image.Image, width: int, source_w: float, source_h: float) -> None:
    """Exact width; height within one pixel of the source's aspect ratio."""
    ideal = width * source_h / source_w
    assert image.width == width, f"expected width {width}, got {image.size}"
    assert abs(image.height - ideal) <= 1, (
        f"expected height {ideal:.2f} (within 1 px) for {width} px wide, got {image.height}"
    )


def assert_not_blank(image: Image.Image) -> None:
    stddev = ImageStat.Stat(image.convert("L")).stddev[0]
    assert stddev > MIN_STDDEV, (
        f"expected a drawn page (grey stddev > {MIN_STDDEV}), got {stddev:.1f}"
    )


def region(image: Image.Image, left: float, top: float, right: float, bottom: float) -> tuple:
    """Mean RGB over a box given in fractions of the image size."""
    rgb = image.convert("RGB")
    box = (
        int(left * rgb.width),
        int(top * rgb.height),
        max(int(right * rgb.width), int(left * rgb.width) + 1),
        max(int(bottom * rgb.height), int(top * rgb.height) + 1),
    )
    return tuple(round(v) for v in ImageStat.Stat(rgb.crop(box)).mean)


def is_dark(rgb: tuple) -> bool:
    return max(rgb) < 80


def is_light(rgb: tuple) -> bool:
    return min(rgb) > 170


def is_red(rgb: tuple) -> bool:
    r, g, b = rgb
    return r > 150 and g < 100 and b < 100


def assert_layout(image: Image.Image, rotate: int = 0, band: str = "red") -> None:
    """The page layout turned `rotate` degrees clockwise, as a viewer shows a /Rotate page."""
    assert_upright_layout(image.rotate(rotate, expand=True) if rotate else image, band)


def assert_upright_layout(image: Image.Image, band: str = "red") -> None:
    """Black block top-left, band along the bottom."""
    assert is_dark(region(image, 0.02, 0.02, 0.2, 0.2)), (
        f"expected the black block top-left, saw mean {region(image, 0.02, 0.02, 0.2, 0.2)}"
    )
    assert is_light(region(image, 0.75, 0.02, 0.98, 0.2)), (
        f"expected light paper top-right, saw mean {region(image, 0.75, 0.02, 0.98, 0.2)}"
    )
    bottom = region(image, 0.3, 0.85, 0.98, 0.98)
    if band == "red":
        assert is_red(bottom), f"expected the red band at the bottom, saw mean {bottom}"
    else:
        assert max(bottom) < 120, f"expected a dark band at the bottom, saw mean {bottom}"


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute grey-level difference (0-255) after shrinking both to 64 px wide."""
    size = (64, max(1, round(64 * a.height / a.width)))
    small_a = a.convert("L").resize(size, Image.Resampling.BOX)
    small_b = b.convert("L").resize(size, Image.Resampling.BOX)
    return ImageStat.Stat(ImageChops.difference(small_a, small_b)).mean[0]

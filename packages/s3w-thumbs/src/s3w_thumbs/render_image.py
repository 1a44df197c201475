"""JPEG, PNG and TIFF (multi-page too) to JPEG previews with Pillow, upright and in sRGB."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from s3w_thumbs import budget, jpeg
from s3w_thumbs.deadline import Deadline
from s3w_thumbs.errors import CorruptDocument, PageOutOfRange
from s3w_thumbs.sizing import scaled_height

_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that shows the image upright (as ImageOps does).
_UPRIGHT: dict[int, tuple[Image.Transpose, ...]] = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})


@contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """Open an image, turning Pillow's refusals into the documented errors."""
    with path.open("rb") as file, budget.pillow_guard(path.name):  # the whole use guarded
        try:
            image = Image.open(file)
        except (OSError, SyntaxError, ValueError) as error:  # includes UnidentifiedImageError
            raise CorruptDocument(
                f"{path.name}: the image cannot be read; it may be damaged or truncated"
            ) from error
        with image:
            yield image


def frame_count(image: Image.Image) -> int:
    return int(getattr(image, "n_frames", 1))


def page_count(path: Path) -> int:
    with open_image(path) as image, decoding(path):
        return frame_count(image)


def orientation(image: Image.Image) -> int:
    value = image.getexif().get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def _check_page(path: Path, image: Image.Image, page_number: int) -> None:
    count = frame_count(image)
    if page_number > count:
        raise PageOutOfRange(
            f"{path.name}: page {page_number} asked for, the image has {count}",
            page_number=page_number,
            page_count=count,
        )


@contextmanager
def decoding(path: Path) -> Iterator[None]:
    """Turn Pillow's signals for truncated or corrupt image data into `CorruptDocument`."""
    try:
        yield
    except (OSError, SyntaxError, ValueError) as error:
        raise CorruptDocument(
            f"{path.name}: the image data is damaged or truncated ({error})"
        ) from error


def upright(image: Image.Image, exif_orientation: int) -> Image.Image:
    for method in _UPRIGHT.get(exif_orientation, ()):
        image = image.transpose(method)
    return image


def render(path: Path, page_number: int, widths: Sequence[int], deadline: Deadline) -> list[bytes]:
    """JPEGs of one image page at each width; decoded once, each width resampled from it."""
    with open_image(path) as image, decoding(path):
        _check_page(path, image, page_number)
        image.seek(page_number - 1)
        budget.check_image(path.name, image.size, page_number)
        turn = orientation(image)
        swap = turn in _SWAPS_AXES
        shown_w, shown_h = (image.height, image.width) if swap else image.size
        sizes = [(w, scaled_height(shown_w, shown_h, w)) for w in widths]
        if image.format == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that is still large enough.
            big_w, big_h = max(sizes)
            image.draft(None, (big_h, big_w) if swap else (big_w, big_h))
        image.load()
        base = jpeg.to_displayable(image)
        out = []
        for width, height in sizes:
            deadline.check()
            stored = (height, width) if swap else (width, height)
            resized = base.resize(stored, Image.Resampling.LANCZOS, reducing_gap=3.0)
            out.append(jpeg.encode(upright(resized, turn)))
        return out

"""Scanned pages drawn from their one JPEG at a reduced DCT scale instead of rendered.

A scanned page is one opaque image covering the page, perhaps under an invisible OCR text
layer. Rendering it makes the renderer decode every pixel of a 300-dpi image and then throw
almost all of them away; libjpeg can instead decode at 1/2, 1/4 or 1/8 scale in the DCT
domain (`Image.draft`), several times faster. `plan` decides from PDFium's page objects (under
the caller's PDFium lock) whether a page qualifies; anything it cannot vouch for returns None
and the page is rendered in full as before.

What qualifies: no annotations; exactly one image, on the page itself (not in a form),
unclipped, without transparency, placed by an axis-aligned matrix whose square covers the
crop box; 8-bit DeviceGray or DeviceRGB named in the image's dictionary, filter `DCTDecode`
alone; no `/SMask`, `/Mask`, `/Decode`, `/DecodeParms`, `/ImageMask` or optional content in
that dictionary; besides the image only invisible text (render mode 3), also inside forms.

JPEG 2000, CCITT and JBIG2 pages stay with PDFium, which measured faster on them: it already
decodes JPEG 2000 at a reduced resolution level (a 100 px thumbnail of a 300-dpi A4 page in
15 ms of CPU, Pillow's `reduce` path 41 ms), and bilevel decoders have no reduced-scale mode
(Pillow decoding CCITT G4 through libtiff, then resizing: 6.7 ms; PDFium: 4.8 ms).
"""

from __future__ import annotations

import ctypes
import io
import math
import mmap
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from s3w_thumbs import jpeg, pool
from s3w_thumbs.deadline import Deadline

# Declared image sizes past these are left to the full render (and its limits): the fast
# path never allocates for a number a file made up. The pixel limit stays under Pillow's
# decompression-bomb warning; a 600-dpi A3 scan (70 megapixels) is still within it.
MAX_SIDE = 30_000
MAX_PIXELS = 80_000_000
# How far the image may miss the crop box on any edge, as a fraction of the page side, for
# the page still to count as covered: a third of a pixel at 1600 px, invisible in a preview.
COVER_SLACK = 0.0002
# Keys in an image dictionary that change its pixels or how they are painted.
_PAINT_KEYS = re.compile(
    rb"/(?:SMask|Mask|Decode|DecodeParms|ImageMask|SMaskInData|OC|Alternates)(?![A-Za-z0-9#])"
)
# The image's dictionary lies between `obj` and `stream` just before its data; one this far
# back is a broken file.
_DICT_WINDOW = 4096
_OBJECT_HEADER = re.compile(rb"(?<![0-9])[0-9]+\s+[0-9]+\s+obj(?![A-Za-z0-9])")
_NEEDLE = 512
_COLOUR_SPACE = re.compile(rb"/ColorSpace\s*/([A-Za-z]+)(?![A-Za-z0-9#])")
_BITS = re.compile(rb"/BitsPerComponent\s+([0-9]+)(?![0-9.])")
_MODES = {b"DeviceGray": "L", b"DeviceRGB": "RGB"}
# Resampling filters, chosen by measured agreement with PDFium's own drawing of the page
# (the full render) and by cost: bicubic agrees best, but for reductions by less than 2x
# (300 dpi to 1600 px) the box filter looks the same at two thirds of the cost.
_RESAMPLE = Image.Resampling.BICUBIC
_RESAMPLE_MILD = Image.Resampling.BOX
_MILD = 2.0
_OVERSAMPLE = 2
_REDUCING_GAP = 3.0
# Float noise allowed when snapping a placement to whole pixels.
_EPSILON = 1e-6

# Directions in device space (x right, y down) as unit vectors.
_RIGHT, _LEFT, _DOWN, _UP = (1, 0), (-1, 0), (0, 1), (0, -1)
# The transposition that moves an image's column direction (+u) and row direction (+v) to
# the given device directions: (u ->, v ->) -> method (None: as it is).
_PLACE: dict[tuple[tuple[int, int], tuple[int, int]], Image.Transpose | None] = {
    (_RIGHT, _DOWN): None,
    (_LEFT, _DOWN): Image.Transpose.FLIP_LEFT_RIGHT,
    (_RIGHT, _UP): Image.Transpose.FLIP_TOP_BOTTOM,
    (_LEFT, _UP): Image.Transpose.ROTATE_180,
    (_DOWN, _RIGHT): Image.Transpose.TRANSPOSE,
    (_UP, _LEFT): Image.Transpose.TRANSVERSE,
    (_UP, _RIGHT): Image.Transpose.ROTATE_90,
    (_DOWN, _LEFT): Image.Transpose.ROTATE_270,
}
# A page's /Rotate (clockwise, as a viewer turns it) as a transposition of the drawn page.
_TURN = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Plan:
    """How to draw a qualifying page from its image."""

    data: bytes  # the image stream as stored: a JPEG file
    mode: str  # the Pillow mode the PDF's colour space means: "L" or "RGB"
    pixels: tuple[int, int]  # declared /Width, /Height
    place: Image.Transpose | None  # image -> upright on the unrotated page
    crop: tuple[float, float, float, float]  # crop box in fractions of the upright image
    turn: Image.Transpose | None  # the page's /Rotate


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def _direction(x: float, y: float) -> tuple[int, int] | None:
    """A user-space vector as a device direction, if it lies along an axis."""
    if x != 0 and y == 0:
        return (_sign(x), 0)
    if x == 0 and y != 0:
        return (0, -_sign(y))  # user y points up, device y down
    return None


def _dictionary_of(path: Path, data: bytes) -> bytes | None:
    """The text of the dictionary of the one stream in `path` holding `data`, or None.

    Found by the stream's last bytes (entropy-coded data, unlike the tables at its start
    that every page from one scanner shares); a file holding them twice (an incremental
    update that rewrote the image) cannot say which copy is in force, so gets None.
    """
    tail = data[-_NEEDLE:]
    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
            found = view.find(tail)
            if found < 0 or view.find(tail, found + 1) >= 0:
                return None  # not stored as is (encrypted?), or stored twice
            start = found + len(tail) - len(data)
            if start < 0 or view[start : start + _NEEDLE] != data[:_NEEDLE]:
                return None
            before = view[max(0, start - _DICT_WINDOW) : start]
    except (OSError, ValueError):  # replaced or truncated since PDFium opened it
        return None
    head = before.rstrip(b"\r\n")
    if not head.endswith(b"stream"):
        return None
    openings = list(_OBJECT_HEADER.finditer(head))
    if not openings:
        return None
    return head[openings[-1].end() : -len(b"stream")]


def _only_invisible_text(raw: Any, form: Any) -> bool:
    """True when a form holds nothing but invisible text (forms within it too)."""
    count = raw.FPDFFormObj_CountObjects(form)
    if count < 0:
        return False
    return all(_invisible(raw, raw.FPDFFormObj_GetObject(form, index)) for index in range(count))


def _invisible(raw: Any, obj: Any) -> bool:
    kind = raw.FPDFPageObj_GetType(obj)
    if kind == raw.FPDF_PAGEOBJ_TEXT:
        return bool(raw.FPDFTextObj_GetTextRenderMode(obj) == raw.FPDF_TEXTRENDERMODE_INVISIBLE)
    if kind == raw.FPDF_PAGEOBJ_FORM:
        return _only_invisible_text(raw, obj)
    return False


def _unclipped(raw: Any, obj: Any) -> bool:
    clip = raw.FPDFPageObj_GetClipPath(obj)
    return not clip or raw.FPDFClipPath_CountPaths(clip) <= 0


def plan(page: Any, path: Path) -> Plan | None:
    """A `Plan` for a PDFium page that is one opaque image, else None. Call under the lock."""
    import pypdfium2

    raw = pypdfium2.raw
    if raw.FPDFPage_GetAnnotCount(page) != 0:
        return None
    image = None
    for index in range(raw.FPDFPage_CountObjects(page)):
        obj = raw.FPDFPage_GetObject(page, index)
        if raw.FPDFPageObj_GetType(obj) == raw.FPDF_PAGEOBJ_IMAGE and image is None:
            image = obj
        elif not _invisible(raw, obj):
            return None
    if image is None or raw.FPDFPageObj_HasTransparency(image) or not _unclipped(raw, image):
        return None
    return _plan_image(raw, page, image, path)


def _filters(raw: Any, image: Any) -> tuple[str, ...]:
    names = []
    for index in range(raw.FPDFImageObj_GetImageFilterCount(image)):
        size = raw.FPDFImageObj_GetImageFilter(image, index, None, 0)
        buffer = ctypes.create_string_buffer(size)
        raw.FPDFImageObj_GetImageFilter(image, index, buffer, size)
        names.append(buffer.value.decode("ascii", "replace"))
    return tuple(names)


def _plan_image(raw: Any, page: Any, image: Any, path: Path) -> Plan | None:
    if _filters(raw, image) != ("DCTDecode",):
        return None
    width, height = ctypes.c_uint(), ctypes.c_uint()
    if not raw.FPDFImageObj_GetImagePixelSize(image, ctypes.byref(width), ctypes.byref(height)):
        return None
    pixels = (width.value, height.value)
    if min(pixels) < 1 or max(pixels) > MAX_SIDE or pixels[0] * pixels[1] > MAX_PIXELS:
        return None
    matrix = raw.FS_MATRIX()
    if not raw.FPDFPageObj_GetMatrix(image, ctypes.byref(matrix)):
        return None
    columns = _direction(matrix.a, matrix.b)  # where the image's +u goes on the page
    rows = _direction(-matrix.c, -matrix.d)  # and its +v (rows run down the image)
    if columns is None or rows is None or (columns, rows) not in _PLACE:
        return None
    crop = _crop(raw, page, matrix)
    if crop is None:
        return None
    rotation = raw.FPDFPage_GetRotation(page) * 90
    size = raw.FPDFImageObj_GetImageDataRaw(image, None, 0)
    if size <= 0:
        return None
    buffer = (ctypes.c_ubyte * size)()
    raw.FPDFImageObj_GetImageDataRaw(image, buffer, size)
    data = bytes(buffer)
    dictionary = _dictionary_of(path, data)
    if dictionary is None or _PAINT_KEYS.search(dictionary):
        return None
    mode = _mode(dictionary)
    if mode is None:
        return None
    return Plan(data, mode, pixels, _PLACE[(columns, rows)], crop, _TURN.get(rotation))


def _mode(dictionary: bytes) -> str | None:
    """ "L" or "RGB" for 8-bit DeviceGray or DeviceRGB named in the dictionary itself.

    Read from the dictionary rather than asked of PDFium, whose image metadata call may
    decode the whole image to find out (crbug.com/pdfium/1928).
    """
    space = _COLOUR_SPACE.findall(dictionary)
    depth = _BITS.findall(dictionary)
    if len(space) != 1 or depth != [b"8"]:
        return None
    return _MODES.get(space[0])


def _crop(raw: Any, page: Any, matrix: Any) -> tuple[float, float, float, float] | None:
    """The page's crop box as fractions of the upright image's extent, if the image covers
    it; None when part of the box would show the page's white."""
    box = raw.FS_RECTF()
    if not raw.FPDF_GetPageBoundingBox(page, ctypes.byref(box)):
        return None
    xs = (matrix.e, matrix.e + matrix.a + matrix.c)
    ys = (matrix.f, matrix.f + matrix.b + matrix.d)
    left, right, bottom, top = min(xs), max(xs), min(ys), max(ys)
    span_x, span_y = right - left, top - bottom
    box_w, box_h = box.right - box.left, box.top - box.bottom
    if not (span_x > 0 and span_y > 0 and box_w > 0 and box_h > 0):
        return None
    slack_x, slack_y = COVER_SLACK * box_w, COVER_SLACK * box_h
    if (
        box.left < left - slack_x
        or box.right > right + slack_x
        or box.bottom < bottom - slack_y
        or box.top > top + slack_y
    ):
        return None
    return (
        max(0.0, (box.left - left) / span_x),
        max(0.0, (top - box.top) / span_y),
        min(1.0, (box.right - left) / span_x),
        min(1.0, (top - box.bottom) / span_y),
    )


def _swaps(method: Image.Transpose | None) -> bool:
    return method in (
        Image.Transpose.TRANSPOSE,
        Image.Transpose.TRANSVERSE,
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_270,
    )


def _decode(plan: Plan, need: tuple[int, int]) -> Image.Image | None:
    """The image decoded at the smallest scale whose pixels are still >= `need` (in the
    image's own orientation), or None if it is not what the PDF declared."""
    image = Image.open(io.BytesIO(plan.data), formats=["JPEG"])
    if image.size != plan.pixels or image.mode != plan.mode:
        return None
    image.draft(plan.mode, need)
    image.load()
    return image


def _placement(
    crop: tuple[float, float, float, float], page_px: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Where the whole upright image lands when the crop box fills `page_px` pixels:
    (left, top, right, bottom) in whole pixels, widened outwards as PDFium snaps an image's
    rectangle to the pixel grid before stretching it (a half-pixel shift shows on text)."""
    left, top, right, bottom = crop
    width, height = page_px[0] / (right - left), page_px[1] / (bottom - top)
    x0, y0 = -left * width, -top * height
    return (
        math.floor(x0 + _EPSILON),
        math.floor(y0 + _EPSILON),
        math.ceil(x0 + width - _EPSILON),
        math.ceil(y0 + height - _EPSILON),
    )


def render(
    plan: Plan, widths: Sequence[int], heights: Sequence[int], deadline: Deadline
) -> list[bytes] | None:
    """JPEGs of the page at each width x height, all from one decode; None if the image
    turns out not to be what the PDF declared (the caller then renders the page). Needs
    no PDFium, so the caller runs it outside the PDFium lock."""
    turned = _swaps(plan.turn)
    placed = _swaps(plan.place)
    sizes = [(h, w) if turned else (w, h) for w, h in zip(widths, heights, strict=True)]
    spots = [_placement(plan.crop, size) for size in sizes]
    # The largest image wanted, in the image's own orientation, decides the decode scale:
    # twice its size, so that at least two decoded pixels stand behind each drawn one. A
    # 1/8-scale decode is the mean of each 8x8 block; resampling such an image by less than
    # 2x puts text edges visibly off the full render's (measured: mean difference 19 grey
    # levels at 100 px from a 150-dpi scan, 9 when the decode is 2x). 300-dpi pages get
    # the same scale either way: 1/8 of A4 is 310 px.
    need_w = _OVERSAMPLE * max(right - left for left, _, right, _ in spots)
    need_h = _OVERSAMPLE * max(bottom - top for _, top, _, bottom in spots)
    pool.keep_image_memory()
    try:
        source = _decode(plan, (need_h, need_w) if placed else (need_w, need_h))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None  # PDFium may still draw what Pillow refuses
    if source is None:
        return None
    # Largest first, each drawn from the one before it: resampling 1600 px down to 900 is
    # far cheaper than resampling the 300-dpi image again, and looks the same. Nothing else
    # holds the decoded image, so its memory is free for the next size once the first is
    # drawn.
    order = sorted(range(len(sizes)), key=lambda i: sizes[i], reverse=True)
    out: list[bytes] = [b""] * len(sizes)
    for index in order:
        deadline.check()
        (page_w, page_h), (left, top, right, bottom) = sizes[index], spots[index]
        size = (right - left, bottom - top)
        stored = (size[1], size[0]) if placed else size
        mild = source.width < _MILD * stored[0] and source.height < _MILD * stored[1]
        source = source.resize(
            stored, _RESAMPLE_MILD if mild else _RESAMPLE, reducing_gap=_REDUCING_GAP
        )
        drawn = source.transpose(plan.place) if plan.place is not None else source
        if (left, top, right, bottom) != (0, 0, page_w, page_h):
            drawn = drawn.crop((-left, -top, page_w - left, page_h - top))
        if plan.turn is not None:
            drawn = drawn.transpose(plan.turn)
        out[index] = jpeg.encode(drawn)
    return out

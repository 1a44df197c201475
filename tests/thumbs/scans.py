"""Scanned-style PDFs made on the spot: one page image (JPEG, JPEG 2000, CCITT G4, JBIG2) per
page, as scanners and OCR tools write them, plus the variations that must not take the
fast path (a stamp, an annotation, masks, colour spaces...). Built with pikepdf so every
dictionary key and content-stream operator is exactly what the case names."""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name
from PIL import Image, ImageDraw, ImageFilter

A4 = (595.28, 841.89)


def scan_image(width: int, height: int, seed: int = 1) -> Image.Image:
    """An RGB page as a scanner sees it: paper tint and grain, lines of word-like dark marks,
    a photo-like block with gradients and detail, a coloured logo."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (246, 244, 238))
    draw = ImageDraw.Draw(image)
    unit = max(1, width // 120)  # about a text x-height at 300 dpi when width is 2480
    # Header logo and a photo-like block.
    draw.ellipse((width * 0.07, height * 0.04, width * 0.2, height * 0.12), fill=(200, 40, 40))
    photo = Image.radial_gradient("L").resize((int(width * 0.35), int(height * 0.2)))
    photo_rgb = Image.merge(
        "RGB", (photo, photo.rotate(90), photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )
    image.paste(photo_rgb, (int(width * 0.58), int(height * 0.05)))
    y = int(height * 0.3)
    while y < height * 0.93:
        x = int(width * 0.08)
        line_end = width * (0.92 if rng.random() > 0.15 else 0.5)
        while x < line_end:
            word = rng.randint(2, 9) * unit
            draw.rectangle((x, y, x + word, y + 2 * unit), fill=(rng.randint(10, 60),) * 3)
            x += word + unit + unit // 2
        y += 4 * unit
    noise = Image.effect_noise((width, height), 12).convert("RGB")
    image = Image.blend(image, noise, 0.06)
    return image.filter(ImageFilter.GaussianBlur(0.6))


def jpeg_bytes(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


@dataclass
class Placed:
    """One image on a page: its stream dictionary and data, and its transform matrix."""

    data: bytes
    keys: dict[str, object]
    matrix: tuple[float, float, float, float, float, float]


@dataclass
class ScanPage:
    """A page: its images, extra content-stream text, /Rotate, crop box and annotations."""

    images: list[Placed]
    size: tuple[float, float] = A4
    rotate: int = 0
    crop: tuple[float, float, float, float] | None = None
    before: bytes = b""  # content before the images (graphics state, clipping)
    after: bytes = b""  # content after the images (text layers, stamps)
    text_form: bytes | None = None  # content of a form XObject drawn after the images
    annotations: list[dict[str, object]] = field(default_factory=list)
    resources: Callable[[Dictionary], None] | None = None  # adds page resources


def _obj(pdf: pikepdf.Pdf, value: object) -> object:
    if callable(value):  # an object that needs the document: a stream
        return value(pdf)
    if isinstance(value, bytes):
        return pikepdf.Stream(pdf, value)
    if isinstance(value, list):
        return Array([_obj(pdf, v) for v in value])
    if isinstance(value, str) and value.startswith("/"):
        return Name(value)
    return value


def write_pdf(path: Path, pages: list[ScanPage]) -> Path:
    pdf = pikepdf.new()
    font = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    for spec in pages:
        page = pdf.add_blank_page(page_size=spec.size)
        xobjects = Dictionary()
        content = [spec.before]
        for index, placed in enumerate(spec.images):
            stream = pikepdf.Stream(pdf, placed.data)
            stream.Type = Name.XObject
            stream.Subtype = Name.Image
            for key, value in placed.keys.items():
                stream[f"/{key}"] = _obj(pdf, value)
            xobjects[f"/Im{index}"] = stream
            numbers = " ".join(f"{v:g}" for v in placed.matrix)
            content.append(f"q {numbers} cm /Im{index} Do Q\n".encode())
        content.append(spec.after)
        if spec.text_form is not None:
            form = pikepdf.Stream(pdf, spec.text_form)
            form.Type, form.Subtype = Name.XObject, Name.Form
            form.BBox = Array([0, 0, spec.size[0], spec.size[1]])
            form.Resources = Dictionary(Font=Dictionary(F1=font))
            xobjects["/Text"] = form
            content.append(b"q /Text Do Q\n")
        page.Resources = Dictionary(XObject=xobjects, Font=Dictionary(F1=font))
        page.Contents = pdf.make_stream(b"".join(content))
        if spec.rotate:
            page.Rotate = spec.rotate
        if spec.crop is not None:
            page.CropBox = Array(list(spec.crop))
        if spec.annotations:
            page.Annots = Array([pdf.make_indirect(Dictionary(**a)) for a in spec.annotations])
        if spec.resources is not None:
            spec.resources(page.Resources)
    pdf.save(path)
    return path


def full_page(size: tuple[float, float] = A4) -> tuple[float, float, float, float, float, float]:
    return (size[0], 0, 0, size[1], 0, 0)


def jpeg_image(image: Image.Image, **keys: object) -> Placed:
    """`image` as a DCT-encoded image XObject filling an A4 page."""
    space = {"L": "/DeviceGray", "RGB": "/DeviceRGB", "CMYK": "/DeviceCMYK"}[image.mode]
    base = {
        "Width": image.width,
        "Height": image.height,
        "ColorSpace": space,
        "BitsPerComponent": 8,
        "Filter": "/DCTDecode",
    }
    return Placed(jpeg_bytes(image), {**base, **keys}, full_page())


def jpx_image(image: Image.Image) -> Placed:
    out = io.BytesIO()
    image.save(out, format="JPEG2000", irreversible=True, quality_mode="rates", quality_layers=[20])
    keys = {
        "Width": image.width,
        "Height": image.height,
        "ColorSpace": "/DeviceRGB" if image.mode == "RGB" else "/DeviceGray",
        "BitsPerComponent": 8,
        "Filter": "/JPXDecode",
    }
    return Placed(out.getvalue(), keys, full_page())


def g4_data(image: Image.Image) -> bytes:
    """`image` (mode 1, 1 = white) as one CCITT Group 4 strip, white runs coded as white."""
    out = io.BytesIO()
    # libtiff codes runs of 0 bits as white runs: make the white pixels the 0 bits.
    white_is_zero = Image.eval(image.convert("L"), lambda v: 255 - v).convert("1")
    white_is_zero.save(out, format="TIFF", compression="group4", tiffinfo={278: image.height})
    tiff = Image.open(io.BytesIO(out.getvalue()))
    offset = tiff.tag_v2[273][0]
    length = tiff.tag_v2[279][0]
    return out.getvalue()[offset : offset + length]


def _bilevel(image: Image.Image, data: bytes, codec: str, **keys: object) -> Placed:
    """A 1-bit DeviceGray image XObject filling an A4 page, stored with filter `codec`."""
    base = {
        "Width": image.width,
        "Height": image.height,
        "ColorSpace": "/DeviceGray",
        "BitsPerComponent": 1,
        "Filter": codec,
    }
    return Placed(data, {**base, **keys}, full_page())


def ccitt_image(image: Image.Image) -> Placed:
    parms = Dictionary(K=-1, Columns=image.width, Rows=image.height, BlackIs1=False)
    return _bilevel(image, g4_data(image), "/CCITTFaxDecode", DecodeParms=parms)


def _segment(number: int, kind: int, data: bytes, page: int = 1) -> bytes:
    # Segment header: number, flags (type, 1-byte page association), no referred-to
    # segments, page association, data length.
    return struct.pack(">IBBBI", number, kind, 0, page, len(data)) + data


def jbig2_data(image: Image.Image) -> bytes:
    """`image` (mode 1) as an embedded JBIG2 stream (PDF style, no file header): a page
    information segment and one immediate lossless generic region coded with MMR (which
    is CCITT Group 4 in JBIG2's terms, 1 = black)."""
    w, h = image.size
    mmr = g4_data(image)
    info = struct.pack(">IIIIBH", w, h, 0, 0, 0, 0)
    region = struct.pack(">IIIIB", w, h, 0, 0, 0) + bytes([0x01]) + mmr
    return _segment(0, 48, info) + _segment(1, 39, region)


def jbig2_image(image: Image.Image) -> Placed:
    return _bilevel(image, jbig2_data(image), "/JBIG2Decode")


_OCR_WORDS = ("invoice", "total", "amount", "due", "date", "customer", "order", "tax", "2024")


def ocr_layer(words: int = 300, seed: int = 0) -> bytes:
    """An invisible text layer (render mode 3) as OCR tools write it: one positioned word
    after another over where the scan shows them."""
    rng = random.Random(seed)
    parts = [b"BT 3 Tr /F1 10 Tf\n"]
    for index in range(words):
        x, y = 60 + (index % 12) * 40, 760 - (index // 12) * 14
        parts.append(f"1 0 0 1 {x} {y} Tm ({rng.choice(_OCR_WORDS)}) Tj\n".encode())
    parts.append(b"ET\n")
    return b"".join(parts)


OCR_TEXT = ocr_layer(120)
STAMP = b"BT 0 Tr 0.8 0 0 rg /F1 48 Tf 150 420 Td (PAID) Tj ET\n"


def corpus(dpi: int = 100) -> dict[str, tuple[list[ScanPage], bool]]:
    """Name -> (pages, whether page 1 takes the fast path)."""
    w, h = round(A4[0] * dpi / 72), round(A4[1] * dpi / 72)
    rgb = scan_image(w, h)
    grey = rgb.convert("L")
    bilevel = grey.point(lambda v: 255 if v > 150 else 0).convert("1")
    landscape = scan_image(h, w, seed=2)  # stored sideways, turned by the matrix
    margin = (A4[0] * 0.9, 0, 0, A4[1] * 0.9, A4[0] * 0.05, A4[1] * 0.05)

    def one(placed: Placed, **page: object) -> list[ScanPage]:
        return [ScanPage([placed], **page)]  # type: ignore[arg-type]

    quarter = jpeg_image(landscape)
    quarter_turned = Placed(quarter.data, quarter.keys, (0, A4[1], -A4[0], 0, A4[0], 0))
    other_quarter = Placed(quarter.data, quarter.keys, (0, -A4[1], A4[0], 0, 0, A4[1]))
    flipped = jpeg_image(rgb)
    mirrored = Placed(flipped.data, flipped.keys, (-A4[0], 0, 0, A4[1], A4[0], 0))
    upside = Placed(flipped.data, flipped.keys, (A4[0], 0, 0, -A4[1], 0, A4[1]))
    half_w = w // 2
    smask = Image.linear_gradient("L").resize((w, h))
    return {
        "rgb-jpeg": (one(jpeg_image(rgb)), True),
        "grey-jpeg": (one(jpeg_image(grey)), True),
        "rotate-90": (one(jpeg_image(rgb), rotate=90), True),
        "rotate-180": (one(jpeg_image(grey), rotate=180), True),
        "rotate-270": (one(jpeg_image(rgb), rotate=270), True),
        "matrix-quarter-turn": (one(quarter_turned), True),
        "matrix-other-quarter-turn": (one(other_quarter, rotate=90), True),
        "matrix-mirrored": (one(mirrored), True),
        "matrix-upside-down": (one(upside), True),
        "cropbox-top-half": (one(jpeg_image(rgb), crop=(0, A4[1] / 2, A4[0], A4[1])), True),
        "cropbox-inset-rotated": (
            one(jpeg_image(rgb), crop=(40, 60, A4[0] - 30, A4[1] - 90), rotate=90),
            True,
        ),
        "ocr-text-layer": (one(jpeg_image(rgb), after=OCR_TEXT), True),
        "ocr-text-in-form": (one(jpeg_image(grey), text_form=OCR_TEXT), True),
        # Everything below must be drawn by the full render (JPEG 2000: PDFium's own
        # reduced-resolution decode is faster than the fast path's).
        "jpeg2000": (one(jpx_image(rgb)), False),
        "cmyk-jpeg": (one(jpeg_image(rgb.convert("CMYK"))), False),
        "visible-stamp": (one(jpeg_image(rgb), after=OCR_TEXT + STAMP), False),
        "annotation": (
            one(
                jpeg_image(rgb),
                annotations=[
                    {
                        "Type": Name.Annot,
                        "Subtype": Name.Square,
                        "Rect": Array([100, 100, 400, 300]),
                        "C": Array([1, 0, 0]),
                        "Border": Array([0, 0, 6]),
                    }
                ],
            ),
            False,
        ),
        "two-images": (
            [
                ScanPage(
                    [
                        Placed(
                            jpeg_bytes(rgb.crop((0, 0, half_w, h))),
                            {**jpeg_image(rgb).keys, "Width": half_w},
                            (A4[0] / 2, 0, 0, A4[1], 0, 0),
                        ),
                        Placed(
                            jpeg_bytes(rgb.crop((half_w, 0, 2 * half_w, h))),
                            {**jpeg_image(rgb).keys, "Width": half_w},
                            (A4[0] / 2, 0, 0, A4[1], A4[0] / 2, 0),
                        ),
                    ]
                )
            ],
            False,
        ),
        "margin-around-image": ([ScanPage([Placed(flipped.data, flipped.keys, margin)])], False),
        "soft-mask": (
            one(jpeg_image(rgb, SMask=_image_stream(smask, "/DeviceGray"))),
            False,
        ),
        "colour-key-mask": (one(jpeg_image(rgb, Mask=[0, 40, 0, 40, 0, 40])), False),
        "decode-array": (one(jpeg_image(grey, Decode=[1, 0])), False),
        "clipped": (one(jpeg_image(rgb), before=b"100 100 300 500 re W n\n"), False),
        "transparent": (
            one(
                jpeg_image(rgb),
                before=b"/Half gs\n",
                resources=lambda res: res.__setitem__(
                    "/ExtGState", Dictionary(Half=Dictionary(ca=0.5))
                ),
            ),
            False,
        ),
        "icc-based": (
            one(jpeg_image(rgb, ColorSpace=["/ICCBased", _srgb_profile])),
            False,
        ),
        "indexed": (
            one(
                Placed(
                    jpeg_bytes(grey),
                    {
                        "Width": w,
                        "Height": h,
                        "ColorSpace": ["/Indexed", "/DeviceRGB", 255, bytes(range(256)) * 3],
                        "BitsPerComponent": 8,
                        "Filter": "/DCTDecode",
                    },
                    full_page(),
                )
            ),
            False,
        ),
        "sixteen-bit": (
            one(
                Placed(
                    b"\x80\x00" * (64 * 64),
                    {
                        "Width": 64,
                        "Height": 64,
                        "ColorSpace": "/DeviceGray",
                        "BitsPerComponent": 16,
                    },
                    full_page(),
                )
            ),
            False,
        ),
        "ccitt-g4": (one(ccitt_image(bilevel)), False),
        "jbig2": (one(jbig2_image(bilevel)), False),
    }


def _image_stream(image: Image.Image, space: str) -> Callable[[pikepdf.Pdf], pikepdf.Stream]:
    def make(pdf: pikepdf.Pdf) -> pikepdf.Stream:
        stream = pikepdf.Stream(pdf, image.tobytes())
        stream.Type, stream.Subtype = Name.XObject, Name.Image
        stream.Width, stream.Height = image.width, image.height
        stream.ColorSpace, stream.BitsPerComponent = Name(space), 8
        return stream

    return make


def _srgb_profile(pdf: pikepdf.Pdf) -> pikepdf.Stream:
    from PIL import ImageCms

    stream = pikepdf.Stream(pdf, ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    stream.N = 3
    return stream


def make_corpus(folder: Path, dpi: int = 100) -> dict[str, tuple[Path, bool]]:
    """Write every corpus case to `folder`; name -> (path, whether it takes the fast path)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        name: (write_pdf(folder / f"{name}.pdf", pages), fast)
        for name, (pages, fast) in corpus(dpi).items()
    }

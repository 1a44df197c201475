"""Images (JPEG, PNG, TIFF with all its pages) to a PDF file, JPEG data kept byte for byte."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image, ImageSequence

from s3w_thumbs import budget, jpeg
from s3w_thumbs.errors import UnsupportedInput
from s3w_thumbs.kinds import Kind, Source, detect_kind
from s3w_thumbs.render_image import decoding, open_image, orientation, upright

# EXIF orientations a PDF page's /Rotate can express; mirrored ones need new pixels.
_ROTATIONS_ONLY = frozenset({1, 3, 6, 8})
_DEFAULT_DPI = 72


def _jpeg_is_embeddable(image: Image.Image) -> bool:
    return image.mode in ("L", "RGB", "CMYK") and orientation(image) in _ROTATIONS_ONLY


def _page_pngs(image: Image.Image, name: str) -> list[bytes]:
    """Every frame, upright and in L/RGB (1-bit kept), as lossless PNG bytes."""
    pages = []
    for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
        budget.check_image(name, frame.size, number)  # before the frame is decoded
        turn = orientation(frame)
        dpi = frame.info.get("dpi")
        shown = upright(jpeg.to_displayable(frame, keep_bilevel=True), turn)
        out = io.BytesIO()
        shown.save(out, format="PNG", dpi=dpi if dpi else (_DEFAULT_DPI, _DEFAULT_DPI))
        pages.append(out.getvalue())
    return pages


def image_to_pdf(source: Source, dest: Source) -> int:
    """Write the image at `source` as a PDF at `dest` (replaced atomically); return its pages.

    JPEGs are embedded unchanged (EXIF rotation becomes the page's /Rotate); PNG and TIFF
    pages are stored losslessly after transparency, CMYK and 16-bit are made displayable.
    """
    import img2pdf  # with pikepdf, only for uploads that need it; renders never load it

    path, target = Path(source), Path(dest)
    kind = detect_kind(path)
    if kind is Kind.PDF:
        raise UnsupportedInput(f"{path.name}: already a PDF; nothing to convert")
    with open_image(path) as image, decoding(path):
        if kind is Kind.JPEG and _jpeg_is_embeddable(image):
            image.load()  # the bytes go in unchanged, but only if they decode
            pages: list[bytes] = [path.read_bytes()]
        else:
            pages = _page_pngs(image, path.name)
    try:
        pdf = img2pdf.convert(pages, rotation=img2pdf.Rotation.ifvalid)
    except img2pdf.ImageOpenError as error:
        raise UnsupportedInput(f"{path.name}: cannot be placed in a PDF ({error})") from error
    if pdf is None:
        raise UnsupportedInput(f"{path.name}: cannot be placed in a PDF")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pdf)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(pages)

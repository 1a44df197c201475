"""Real test inputs made on the spot: PDFs with fpdf2 (+ PDFium for /Rotate and crop boxes),
images with Pillow. Every page shows the same layout so tests can check where things land:
a black block in the top-left quarter and a coloured band across the bottom fifth."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
from fpdf import FPDF
from PIL import Image, ImageDraw

# Page sizes in points as fpdf2 writes them.
POINTS = {"a4": (595.28, 841.89), "letter": (612.0, 792.0)}
RED = (220, 30, 30)
GREEN = (30, 170, 60)
BLUE = (30, 60, 200)


@dataclass(frozen=True)
class PageSpec:
    size: str = "a4"
    landscape: bool = False
    rotate: int = 0  # the page's /Rotate, clockwise as a viewer applies it
    top_half_crop: bool = False  # a CropBox of the top half of the MediaBox

    def shown_size(self) -> tuple[float, float]:
        """Width and height of the page as a viewer shows it, in points."""
        w, h = POINTS[self.size]
        if self.landscape:
            w, h = h, w
        if self.top_half_crop:
            h = h / 2
        return (h, w) if self.rotate in (90, 270) else (w, h)


def make_pdf(path: Path, pages: list[PageSpec], *, band: tuple[int, int, int] = RED) -> Path:
    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=28)
    for number, spec in enumerate(pages, 1):
        pdf.add_page(orientation="L" if spec.landscape else "P", format=spec.size)
        w, h = pdf.w, pdf.h
        pdf.set_fill_color(0, 0, 0)
        pdf.rect(0, 0, w * 0.25, h * 0.25 if not spec.top_half_crop else h * 0.125, style="F")
        pdf.set_fill_color(*band)
        band_top = h * 0.8 if not spec.top_half_crop else h * 0.4
        pdf.rect(0, band_top, w, h * 0.2 if not spec.top_half_crop else h * 0.1, style="F")
        pdf.set_text_color(40, 40, 40)
        pdf.text(w * 0.4, h * 0.15, f"Page {number}")
    data = bytes(pdf.output())
    if any(spec.rotate or spec.top_half_crop for spec in pages):
        document = pypdfium2.PdfDocument(data)
        for index, spec in enumerate(pages):
            page = document[index]
            if spec.top_half_crop:
                # fpdf2 puts the MediaBox on each page; PDFium's getter would fall back to
                # Letter when inherited, so use the known size.
                w, h = POINTS[spec.size]
                if spec.landscape:
                    w, h = h, w
                page.set_cropbox(0, h / 2, w, h)
            if spec.rotate:
                page.set_rotation(spec.rotate)
            page.close()
        out = io.BytesIO()
        document.save(out)
        document.close()
        data = out.getvalue()
    path.write_bytes(data)
    return path


def make_encrypted_pdf(path: Path) -> Path:
    pdf = FPDF(unit="pt", format="a4")
    pdf.add_page()
    pdf.set_font("helvetica", size=28)
    pdf.text(100, 100, "secret")
    pdf.set_encryption(owner_password="owner-pass", user_password="user-pass")
    pdf.output(str(path))
    return path


def make_heavy_pdf(path: Path, lines: int) -> Path:
    """One A4 page with many separate stroked lines: slow enough to hit a render time limit."""
    pdf = FPDF(unit="pt", format="a4")
    pdf.add_page()
    for i in range(lines):
        pdf.line(i % 500, (i * 7) % 800, (i * 13) % 590, (i * 3) % 840)
    pdf.output(str(path))
    return path


def scene(width: int, height: int, band: tuple[int, int, int] = RED) -> Image.Image:
    """The page layout as an RGB image, on a light grey-to-white gradient."""
    image = Image.linear_gradient("L").resize((width, height)).point(lambda v: 200 + v * 55 // 255)
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width // 4, height // 4), fill=(0, 0, 0))
    draw.rectangle((0, height * 4 // 5, width, height), fill=band)
    return image


def exif_with_orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


def make_images(folder: Path) -> dict[str, Path]:
    """One file per image case Papermerge accepts; names say what each holds."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def keep(name: str) -> Path:
        files[name] = folder / name
        return files[name]

    scene(640, 480).save(keep("rgb.jpg"), quality=90)
    # Stored turned a quarter left; EXIF orientation 6 tells a viewer to turn it back.
    scene(640, 480).transpose(Image.Transpose.ROTATE_90).save(
        keep("exif6.jpg"), quality=90, exif=exif_with_orientation(6)
    )
    scene(640, 480).convert("CMYK").save(keep("cmyk.jpg"), quality=90)
    scene(600, 800).convert("L").save(keep("grey.jpg"), quality=90)
    scene(500, 300).save(keep("rgb.png"))
    scene(500, 300).convert("P", palette=Image.Palette.ADAPTIVE).save(keep("palette.png"))
    transparent = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    draw = ImageDraw.Draw(transparent)
    draw.rectangle((0, 0, 100, 100), fill=(0, 0, 0, 255))
    draw.rectangle((0, 320, 400, 400), fill=(*RED, 255))
    transparent.save(keep("alpha.png"))
    grey16 = _gradient_16bit(512, 256)
    grey16.save(keep("grey16.png"))
    grey16.save(keep("grey16.tif"))
    pages = [scene(480, 640, band) for band in (RED, GREEN, BLUE)]
    pages[0].save(
        keep("pages3.tif"), save_all=True, append_images=pages[1:], compression="tiff_lzw"
    )
    scene(800, 1000).convert("1").save(keep("bilevel.tif"), compression="group4")
    return files


def _gradient_16bit(width: int, height: int) -> Image.Image:
    """16-bit greyscale, dark to full 16-bit white left to right, with a black top-left block."""
    values = []
    for y in range(height):
        for x in range(width):
            dark = x < width // 4 and y < height // 4
            values.append(0 if dark else 20000 + (45535 * x) // (width - 1))
    return Image.frombytes("I;16", (width, height), struct.pack(f"<{len(values)}H", *values))

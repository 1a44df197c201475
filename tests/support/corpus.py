"""A generated corpus of hostile documents: each file is small on disk and lies or explodes.

    for item in corpus(tmp_path):   # Item(name, path, mime)
        ...

PDFs are written object by object (so a page tree can claim pages it does not have, and a
page box can be any size); images are written chunk by chunk (so a PNG can declare 13,000 x
13,000 pixels in a few hundred kilobytes) or, for TIFF, saved by Pillow at 1 bit per pixel.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"


@dataclass(frozen=True)
class Item:
    name: str
    path: Path
    mime: str
    #: What the file does to a renderer that trusts it.
    what: str


def pdf(*, count: int | None = None, box: str = "0 0 612 792", pages: int = 1) -> bytes:
    """A PDF of ``pages`` empty pages whose page tree claims ``count`` (default: the truth)."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages if count is None else count} >>".encode(),
        *(f"<< /Type /Page /Parent 2 0 R /MediaBox [{box}] >>".encode() for _ in range(pages)),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """An 8-bit grey PNG of zeros, streamed row by row (small on disk, huge decoded)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    parts = [compressor.compress(row) for _ in range(height)]
    data = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int) -> bytes:
    """A JPEG that declares ``width`` x ``height`` and then ends (no scan data)."""
    sof = struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0])
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def tiff_second_frame(width: int, height: int) -> bytes:
    """A two-page TIFF: a small first page and a ``width`` x ``height`` 1-bit second page."""
    import io

    from PIL import Image

    first = Image.new("1", (64, 64), 1)
    big = Image.new("1", (width, height), 1)
    out = io.BytesIO()
    first.save(out, format="TIFF", save_all=True, append_images=[big], compression="group4")
    return out.getvalue()


def good_pdf() -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.cell(text="s3w")
    return bytes(doc.output())


def encrypted_pdf() -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.set_encryption(owner_password="owner", user_password="user")
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.cell(text="locked")
    return bytes(doc.output())


def corpus(root: Path) -> Iterator[Item]:
    """Write the corpus under ``root`` and yield its items (good controls included)."""
    root.mkdir(parents=True, exist_ok=True)
    good = good_pdf()
    specs: list[tuple[str, str, bytes, str]] = [
        ("good.pdf", PDF, good, "control"),
        ("truncated.pdf", PDF, good[: len(good) // 2], "truncated"),
        ("count-1000000.pdf", PDF, pdf(count=1_000_000), "claims 1,000,000 pages, has 1"),
        ("count-100000.pdf", PDF, pdf(count=100_000), "claims 100,000 pages, has 1"),
        ("count-5000-of-2.pdf", PDF, pdf(count=5_000, pages=2), "claims 5,000 pages, has 2"),
        ("tall-14400.pdf", PDF, pdf(box="0 0 1 14400"), "page 1 x 14,400 pt"),
        ("tall-1000000.pdf", PDF, pdf(box="0 0 1 1000000"), "page 1 x 1,000,000 pt"),
        ("wide-100000.pdf", PDF, pdf(box="0 0 100000 1"), "page 100,000 x 1 pt"),
        ("huge-box.pdf", PDF, pdf(box="0 0 14400 14400"), "page 14,400 x 14,400 pt"),
        ("encrypted.pdf", PDF, encrypted_pdf(), "password-protected"),
        ("png-as-pdf.pdf", PDF, png_bomb(64, 64), "wrong magic: a PNG sent as PDF"),
        ("garbage.pdf", PDF, b"%PDF-1.4\n" + bytes(range(256)) * 8, "PDF magic, then garbage"),
        ("bomb-13000.png", PNG, png_bomb(13_000, 13_000), "13,000 x 13,000 PNG"),
        ("truncated.png", PNG, png_bomb(2_000, 2_000)[:5_000], "truncated PNG"),
        ("header-60000.jpg", JPEG, jpeg_header(60_000, 60_000), "JPEG header 60,000 x 60,000"),
        ("pdf-as-jpeg.jpg", JPEG, good, "wrong magic: a PDF sent as JPEG"),
        (
            "tiff-frame2-20000.tiff",
            TIFF,
            tiff_second_frame(20_000, 20_000),
            "TIFF, page 2 is 20,000 x 20,000",
        ),
    ]
    for name, mime, data, what in specs:
        path = root / name
        path.write_bytes(data)
        yield Item(name, path, mime, what)

"""What kind of file a source is, told by its first bytes rather than its name."""

from __future__ import annotations

import enum
import os
from pathlib import Path

from s3w_thumbs.errors import CorruptDocument, UnsupportedInput

Source = str | os.PathLike[str]

# PDF readers accept a header anywhere in the first kilobyte (junk before it is common).
_PDF_HEADER_WINDOW = 1024
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
)


class Kind(enum.StrEnum):
    """The input types s3w-thumbs renders."""

    PDF = "pdf"
    JPEG = "jpeg"
    PNG = "png"
    TIFF = "tiff"

    @property
    def mime_type(self) -> str:
        return "application/pdf" if self is Kind.PDF else f"image/{self.value}"


def detect_kind(source: Source) -> Kind:
    """Return the kind of `source`; raise `CorruptDocument` if empty, else `UnsupportedInput`."""
    path = Path(source)
    with path.open("rb") as file:
        head = file.read(_PDF_HEADER_WINDOW)
    if not head:
        raise CorruptDocument(f"{path.name}: the file is empty (0 bytes); upload it again")
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return Kind[name]
    if b"%PDF-" in head:
        return Kind.PDF
    raise UnsupportedInput(
        f"{path.name}: not a PDF, JPEG, PNG or TIFF file (starts with {head[:8]!r})"
    )

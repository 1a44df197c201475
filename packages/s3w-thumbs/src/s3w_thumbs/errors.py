"""The exceptions s3w-thumbs raises, one per thing a person can act on."""

from __future__ import annotations


class ThumbnailError(Exception):
    """Base class: the input could not be turned into a JPEG."""


class InvalidSetting(ThumbnailError, ValueError):
    """An environment setting or argument has a value s3w-thumbs cannot use."""


class UnsupportedInput(ThumbnailError):
    """The file is neither a PDF nor an image type Papermerge accepts (JPEG, PNG, TIFF)."""


class CorruptDocument(ThumbnailError):
    """The file is empty, truncated or damaged beyond what the renderer can read."""


class EncryptedDocument(ThumbnailError):
    """The PDF needs a password to open."""


class PageOutOfRange(ThumbnailError, IndexError):
    """The page number asked for is not in the document (pages count from 1)."""

    def __init__(self, message: str, *, page_number: int, page_count: int | None) -> None:
        super().__init__(message)
        self.page_number = page_number
        self.page_count = page_count


class RendererUnavailable(ThumbnailError):
    """The selected renderer cannot run here (pypdfium2 missing, or `pdftoppm` not on PATH)."""


class RenderTimeout(ThumbnailError):
    """Rendering took longer than the time limit (`S3W_THUMBS_RENDER_TIMEOUT`)."""


class DocumentTooLarge(ThumbnailError):
    """More pages or pixels than the budget allows (`S3W_MAX_PAGES`, `S3W_MAX_RENDER_PIXELS`),
    or rendering ran out of memory."""

"""JPEG thumbnails and page previews from PDFs and images."""

from s3w_thumbs.api import (
    iter_page_previews,
    page_count,
    preview_widths,
    render_page_previews,
    render_thumbnail,
)
from s3w_thumbs.convert import image_to_pdf
from s3w_thumbs.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EncryptedDocument,
    InvalidSetting,
    PageOutOfRange,
    RendererUnavailable,
    RenderTimeout,
    ThumbnailError,
    UnsupportedInput,
)
from s3w_thumbs.kinds import Kind, detect_kind
from s3w_thumbs.renderer import active_renderer

__version__ = "0.1.0"

__all__ = [
    "CorruptDocument",
    "DocumentTooLarge",
    "EncryptedDocument",
    "InvalidSetting",
    "Kind",
    "PageOutOfRange",
    "RenderTimeout",
    "RendererUnavailable",
    "ThumbnailError",
    "UnsupportedInput",
    "__version__",
    "active_renderer",
    "detect_kind",
    "image_to_pdf",
    "iter_page_previews",
    "page_count",
    "preview_widths",
    "render_page_previews",
    "render_thumbnail",
]

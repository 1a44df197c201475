"""Environment settings, read when first asked for and cached until `cache_clear()`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

from s3w_thumbs.errors import InvalidSetting

RENDERERS = ("auto", "pdfium", "poppler")
# Preview names in the order Papermerge lists them, with their environment names and defaults.
PREVIEW_SIZES = (
    ("sm", "PM_PREVIEW_PAGE_SIZE_SM", 200),
    ("md", "PM_PREVIEW_PAGE_SIZE_MD", 600),
    ("lg", "PM_PREVIEW_PAGE_SIZE_LG", 900),
    ("xl", "PM_PREVIEW_PAGE_SIZE_XL", 1600),
)
MAX_WIDTH = 10_000


def _default_previews() -> Mapping[str, int]:
    return MappingProxyType({name: default for name, _, default in PREVIEW_SIZES})


@dataclass(frozen=True)
class ThumbSettings:
    """What s3w-thumbs reads from the environment; defaults match Papermerge."""

    thumbnail_width: int = 100
    preview_widths: Mapping[str, int] = field(default_factory=_default_previews)
    renderer: str = "auto"
    render_timeout: float = 60.0


def _width(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSetting(f"{name}={raw!r} is not a whole number of pixels") from None
    return check_width(value, name)


def check_width(value: int, name: str = "width") -> int:
    """Return `value` if it is a usable output width in pixels, else raise `InvalidSetting`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WIDTH:
        raise InvalidSetting(f"{name}={value!r} must be a whole number from 1 to {MAX_WIDTH}")
    return value


def check_renderer(value: str, name: str = "renderer") -> str:
    """Return the renderer name in lower case, or raise `InvalidSetting`."""
    choice = value.strip().lower()
    if choice not in RENDERERS:
        raise InvalidSetting(f"{name}={value!r} must be one of: {', '.join(RENDERERS)}")
    return choice


def _timeout() -> float:
    raw = os.environ.get("S3W_THUMBS_RENDER_TIMEOUT", "").strip()
    if not raw:
        return ThumbSettings.render_timeout
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InvalidSetting(
            f"S3W_THUMBS_RENDER_TIMEOUT={raw!r} must be a positive number of seconds"
        )
    return value


def load_settings() -> ThumbSettings:
    """Read the settings from the environment now (uncached)."""
    return ThumbSettings(
        thumbnail_width=_width("PM_THUMBNAIL_SIZE", ThumbSettings.thumbnail_width),
        preview_widths=MappingProxyType(
            {name: _width(env, default) for name, env, default in PREVIEW_SIZES}
        ),
        renderer=check_renderer(
            os.environ.get("S3W_THUMBS_RENDERER", "") or "auto", "S3W_THUMBS_RENDERER"
        ),
        render_timeout=_timeout(),
    )


@lru_cache(maxsize=1)
def get_settings() -> ThumbSettings:
    """The settings for this process, read from the environment on first use."""
    return load_settings()

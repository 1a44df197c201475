"""Papermerge's key layout: pure functions from (id, name, prefix) to POSIX key strings.

``ab/cd`` are characters 0-2 and 2-4 of the canonical UUID string. With a prefix the key is
``"{prefix}/{key}"``. The local media root mirrors the same relative paths.
"""

from __future__ import annotations

import mimetypes
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from s3w_storage.errors import InvalidKey

PREVIEW_SIZES: Final = ("sm", "md", "lg", "xl")
OCR_NAMES: Final = ("page.txt", "page.hocr", "page.svg", "page.jpg")

DOCVERS: Final = "docvers"
THUMBNAILS: Final = "thumbnails/jpg"
PAGE_PREVIEWS: Final = "previews/pages"
OCR_PAGES: Final = "ocr/pages"

_CONTENT_TYPES: Final = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".txt": "text/plain",
    ".svg": "image/svg+xml",
    ".hocr": "text/html",
    ".html": "text/html",
}


def canonical_id(value: str | uuid.UUID) -> str:
    """The canonical lower-case hyphenated form of a UUID; anything else is refused."""
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        raise InvalidKey(f"{value!r} is not a UUID") from None
    return str(parsed)


def check_segment(name: str, *, what: str = "name") -> str:
    """A single path segment: not empty, not '.' or '..', no '/', '\\' or NUL."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise InvalidKey(f"{what} {name!r} is not a single safe path segment")
    return name


def check_relative(key: str) -> str:
    """A relative POSIX key: no leading '/', no empty, '.' or '..' segments, no '\\' or NUL."""
    if not key:
        raise InvalidKey("empty key")
    if key.startswith("/"):
        raise InvalidKey(f"{key!r} is absolute; keys are relative to the bucket prefix")
    for part in key.split("/"):
        if part in ("", ".", "..") or "\\" in part or "\x00" in part:
            raise InvalidKey(f"{key!r} has an empty, '.', '..' or invalid segment")
    return key


def with_prefix(prefix: str, key: str) -> str:
    """``key`` under ``prefix`` (no leading or trailing slash on the prefix)."""
    if not prefix:
        return key
    check_relative(prefix)
    return f"{prefix}/{key}"


def _sharded(root: str, value: str | uuid.UUID) -> str:
    ident = canonical_id(value)
    return f"{root}/{ident[0:2]}/{ident[2:4]}/{ident}"


def _check_one_of(choice: str, allowed: Sequence[str], what: str) -> None:
    if choice not in allowed:
        raise InvalidKey(f"{what} {choice!r} is not one of {', '.join(allowed)}")


def docver_prefix(docver_id: str | uuid.UUID, prefix: str = "") -> str:
    """Folder of a document version's files, with a trailing '/'."""
    return with_prefix(prefix, _sharded(DOCVERS, docver_id) + "/")


def docver_key(docver_id: str | uuid.UUID, file_name: str, prefix: str = "") -> str:
    """``docvers/ab/cd/<docver_id>/<file_name>``."""
    check_segment(file_name, what="file name")
    return with_prefix(prefix, f"{_sharded(DOCVERS, docver_id)}/{file_name}")


def thumbnail_prefix(doc_id: str | uuid.UUID, prefix: str = "") -> str:
    """Folder of a document's thumbnails, with a trailing '/'."""
    return with_prefix(prefix, _sharded(THUMBNAILS, doc_id) + "/")


def thumbnail_key(doc_id: str | uuid.UUID, size: str = "sm", prefix: str = "") -> str:
    """``thumbnails/jpg/ab/cd/<doc_id>/sm.jpg``."""
    check_segment(size, what="size")
    return with_prefix(prefix, f"{_sharded(THUMBNAILS, doc_id)}/{size}.jpg")


def page_preview_prefix(page_id: str | uuid.UUID, prefix: str = "") -> str:
    """Folder of a page's preview images, with a trailing '/'."""
    return with_prefix(prefix, _sharded(PAGE_PREVIEWS, page_id) + "/")


def page_preview_key(page_id: str | uuid.UUID, size: str, prefix: str = "") -> str:
    """``previews/pages/ab/cd/<page_id>/<sm|md|lg|xl>.jpg``."""
    _check_one_of(size, PREVIEW_SIZES, "preview size")
    return with_prefix(prefix, f"{_sharded(PAGE_PREVIEWS, page_id)}/{size}.jpg")


def legacy_page_thumbnail_prefix(page_id: str | uuid.UUID, prefix: str = "") -> str:
    """Where earlier releases kept page images: ``thumbnails/jpg/ab/cd/<page_id>/``."""
    return with_prefix(prefix, _sharded(THUMBNAILS, page_id) + "/")


def ocr_prefix(page_id: str | uuid.UUID, prefix: str = "") -> str:
    """Folder of a page's OCR artefacts, with a trailing '/'."""
    return with_prefix(prefix, _sharded(OCR_PAGES, page_id) + "/")


def ocr_key(page_id: str | uuid.UUID, name: str, prefix: str = "") -> str:
    """``ocr/pages/ab/cd/<page_id>/<page.txt|page.hocr|page.svg|page.jpg>``."""
    _check_one_of(name, OCR_NAMES, "OCR artefact")
    return with_prefix(prefix, f"{_sharded(OCR_PAGES, page_id)}/{name}")


def media_path(media_root: str | os.PathLike[str], key: str) -> Path:
    """The local file for a relative ``key`` under ``media_root``; never outside it."""
    check_relative(key)
    return Path(media_root).joinpath(*key.split("/"))


def key_for_path(media_root: str | os.PathLike[str], path: str | os.PathLike[str]) -> str:
    """The relative key of a file inside ``media_root`` (the inverse of :func:`media_path`).

    Works whether or not ``media_root`` ends in '/' or is relative; refuses paths outside it.
    """
    root = os.path.abspath(os.fspath(media_root))
    full = os.path.abspath(os.fspath(path))
    rel = os.path.relpath(full, root)
    if rel == "." or rel.startswith(".." + os.sep) or rel == ".." or os.path.isabs(rel):
        raise InvalidKey(
            f"{os.fspath(path)!r} is not inside the media root {os.fspath(media_root)!r}"
        )
    return check_relative(rel.replace(os.sep, "/"))


def content_type_for(name: str) -> str:
    """The Content-Type for a file name (Papermerge's types first, then the system table)."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"

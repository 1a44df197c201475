"""Golden key strings (Papermerge's layout, byte for byte) and refusal of unsafe keys."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from s3w_storage import InvalidKey, keys

DOCVER = "0b7f2d4e-8c1a-4f3e-9b6d-5a2c1e0f9d87"
DOC = "f3a91c20-77d4-4e0b-8a55-19c2b6d4e081"
PAGE = "5e6d1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (
            lambda p: keys.docver_key(DOCVER, "invoice.pdf", p),
            "docvers/0b/7f/0b7f2d4e-8c1a-4f3e-9b6d-5a2c1e0f9d87/invoice.pdf",
        ),
        (
            lambda p: keys.docver_prefix(DOCVER, p),
            "docvers/0b/7f/0b7f2d4e-8c1a-4f3e-9b6d-5a2c1e0f9d87/",
        ),
        (
            lambda p: keys.thumbnail_key(DOC, prefix=p),
            "thumbnails/jpg/f3/a9/f3a91c20-77d4-4e0b-8a55-19c2b6d4e081/sm.jpg",
        ),
        (
            lambda p: keys.thumbnail_prefix(DOC, p),
            "thumbnails/jpg/f3/a9/f3a91c20-77d4-4e0b-8a55-19c2b6d4e081/",
        ),
        (
            lambda p: keys.page_preview_key(PAGE, "sm", p),
            "previews/pages/5e/6d/5e6d1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b/sm.jpg",
        ),
        (
            lambda p: keys.page_preview_key(PAGE, "xl", p),
            "previews/pages/5e/6d/5e6d1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b/xl.jpg",
        ),
        (
            lambda p: keys.page_preview_prefix(PAGE, p),
            "previews/pages/5e/6d/5e6d1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b/",
        ),
        (
            lambda p: keys.legacy_page_thumbnail_prefix(PAGE, p),
            "thumbnails/jpg/5e/6d/5e6d1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b/",
        ),
        (
            lambda p: keys.ocr_key(PAGE, "page.txt", p),
            "ocr/pages/5e/6d/5e6d1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b/page.txt",
        ),
        (
            lambda p: keys.ocr_key(PAGE, "page.hocr", p),
            "ocr/pages/5e/6d/5e6d1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b/page.hocr",
        ),
        (
            lambda p: keys.ocr_prefix(PAGE, p),
            "ocr/pages/5e/6d/5e6d1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b/",
        ),
    ],
)
@pytest.mark.parametrize("prefix", ["", "tenant-a", "tenant-a/prod"])
def test_golden_keys(built, expected: str, prefix: str) -> None:
    want = f"{prefix}/{expected}" if prefix else expected
    assert built(prefix) == want


def test_every_preview_size_and_ocr_name() -> None:
    assert [keys.page_preview_key(PAGE, s).rsplit("/", 1)[1] for s in keys.PREVIEW_SIZES] == [
        "sm.jpg",
        "md.jpg",
        "lg.jpg",
        "xl.jpg",
    ]
    assert {keys.ocr_key(PAGE, n).rsplit("/", 1)[1] for n in keys.OCR_NAMES} == {
        "page.txt",
        "page.hocr",
        "page.svg",
        "page.jpg",
    }


def test_ids_are_canonicalised() -> None:
    as_uuid = uuid.UUID(DOCVER)
    upper = DOCVER.upper()
    braces = "{" + DOCVER + "}"
    expected = keys.docver_key(DOCVER, "a.pdf")
    assert keys.docver_key(as_uuid, "a.pdf") == expected
    assert keys.docver_key(upper, "a.pdf") == expected
    assert keys.docver_key(braces, "a.pdf") == expected
    assert keys.canonical_id(uuid.UUID(DOC).hex) == DOC


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "../../etc", "0b7f2d4e", DOCVER + "/x"])
def test_bad_uuid_refused(bad: str) -> None:
    with pytest.raises(InvalidKey, match="is not a UUID"):
        keys.docver_key(bad, "a.pdf")


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../x.pdf", "a/b.pdf", "/abs.pdf", "a\\b.pdf", "a\x00.pdf"]
)
def test_unsafe_file_names_refused(name: str) -> None:
    with pytest.raises(InvalidKey, match="not a single safe path segment"):
        keys.docver_key(DOCVER, name)


def test_unknown_sizes_and_ocr_names_refused() -> None:
    with pytest.raises(InvalidKey, match="preview size 'xxl'"):
        keys.page_preview_key(PAGE, "xxl")
    with pytest.raises(InvalidKey, match=re.escape("size '../x'")):
        keys.thumbnail_key(DOC, "../x")
    with pytest.raises(InvalidKey, match=re.escape("OCR artefact 'page.pdf'")):
        keys.ocr_key(PAGE, "page.pdf")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty key"),
        ("/docvers/a.pdf", "is absolute"),
        ("docvers/../../etc/passwd", "invalid segment"),
        ("docvers/./a.pdf", "invalid segment"),
        ("docvers//a.pdf", "invalid segment"),
        ("docvers/a.pdf/", "invalid segment"),
        ("docvers\\..\\a.pdf", "invalid segment"),
        ("docvers/a\x00.pdf", "invalid segment"),
        ("..", "invalid segment"),
    ],
)
def test_unsafe_relative_keys_refused(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey, match=reason):
        keys.check_relative(key)
    with pytest.raises(InvalidKey):
        keys.media_path("/srv/media", key)


@pytest.mark.parametrize("prefix", ["/abs", "../up", "a//b", "a\\b"])
def test_unsafe_prefix_refused(prefix: str) -> None:
    with pytest.raises(InvalidKey):
        keys.with_prefix(prefix, "docvers/a.pdf")


def test_media_path_and_key_for_path_round_trip(tmp_path: Path) -> None:
    key = keys.docver_key(DOCVER, "invoice.pdf")
    path = keys.media_path(tmp_path, key)
    assert path == tmp_path / "docvers" / "0b" / "7f" / DOCVER / "invoice.pdf"
    assert keys.key_for_path(tmp_path, path) == key
    # A media root given with a trailing slash or as a relative path gives the same key.
    assert keys.key_for_path(str(tmp_path) + "/", path) == key
    assert keys.key_for_path(tmp_path / "docvers" / "..", path) == key


def test_key_for_path_refuses_paths_outside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "media"
    for outside in (tmp_path / "other.pdf", root, tmp_path / "media-sibling" / "a.pdf"):
        with pytest.raises(InvalidKey, match="is not inside the media root"):
            keys.key_for_path(root, outside)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.pdf", "application/pdf"),
        ("A.PDF", "application/pdf"),
        ("sm.jpg", "image/jpeg"),
        ("scan.jpeg", "image/jpeg"),
        ("scan.png", "image/png"),
        ("scan.tiff", "image/tiff"),
        ("page.txt", "text/plain"),
        ("page.svg", "image/svg+xml"),
        ("page.hocr", "text/html"),
        ("blob.unknownext", "application/octet-stream"),
    ],
)
def test_content_types(name: str, content_type: str) -> None:
    assert keys.content_type_for(name) == content_type

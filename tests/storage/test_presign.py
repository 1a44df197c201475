"""Presigned URLs: they work, they expire, and their expiry is bounded to what SigV4 allows."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.support.services import wait_until

from s3w_storage import InvalidArgument
from s3w_storage.objects import Storage, get_storage
from s3w_storage.settings import get_settings


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - test server
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_presigned_get_works_then_expires(storage: Storage) -> None:
    storage.upload_bytes(b"signed content", "docvers/a.pdf")
    url = storage.presigned_get_url("docvers/a.pdf", expires=2)
    assert _get(url) == (200, b"signed content")
    wait_until(lambda: _get(url)[0] == 403, timeout=30, what="presigned URL expiry")
    status, body = _get(url)
    assert status == 403
    assert b"expired" in body.lower() or b"AccessDenied" in body


def _expires(url: str) -> list[str]:
    return parse_qs(urlsplit(url).query)["X-Amz-Expires"]


@pytest.mark.usefixtures("storage_env")
def test_presigned_get_uses_the_configured_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _expires(get_storage().presigned_get_url("a")) == ["3600"]
    monkeypatch.setenv("PRESIGNED_URL_EXPIRES", "600")
    get_settings.cache_clear()
    get_storage.cache_clear()  # type: ignore[attr-defined]
    assert _expires(get_storage().presigned_get_url("a")) == ["600"]


@pytest.mark.parametrize("expires", [0, -1, 604801])
def test_expiry_out_of_bounds(storage: Storage, expires: int) -> None:
    for presign in (storage.presigned_get_url, storage.presigned_put_url):
        with pytest.raises(InvalidArgument) as info:
            presign("docvers/a.pdf", expires)
        assert str(info.value) == (
            f"expiry {expires} s is outside 1..604800 s (SigV4 allows at most seven days)"
        )


def test_longest_expiry_allowed(storage: Storage) -> None:
    assert _expires(storage.presigned_get_url("docvers/a.pdf", 604800)) == ["604800"]


def test_presigned_put(storage: Storage) -> None:
    url = storage.presigned_put_url("uploads/b.txt", 60, content_type="text/plain")
    request = urllib.request.Request(  # noqa: S310 - test server
        url, data=b"put via url", method="PUT", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    assert storage.get_bytes("uploads/b.txt") == b"put via url"
    info = storage.head("uploads/b.txt")
    assert info is not None
    assert info.content_type == "text/plain"

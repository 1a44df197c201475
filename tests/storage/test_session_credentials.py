"""Temporary credentials from a real STS: SeaweedFS issues a session (``AssumeRole``), s3w's
data plane (obstore) and control plane (botocore) store, read, list and delete with it, and a
token that was altered or has expired is refused with one line.
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import clear_caches
from tests.support import services, session_tokens
from tests.support.proxy import HttpProxy
from tests.support.services import SeaweedS3

from s3w_storage.errors import AccessDenied
from s3w_storage.objects import Storage
from s3w_storage.settings import load_settings

BUCKET = "s3w-session"
PART = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def sts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SeaweedS3, bytes]]:
    """A SeaweedFS of its own whose STS signing key the tests know, with one bucket."""
    key = secrets.token_bytes(32)
    server = services.start_seaweedfs(
        access_key="sts-admin",
        secret_key=secrets.token_hex(16),
        base=tmp_path_factory.mktemp("sts"),
        sts_signing_key=key,
    )
    try:
        server.admin_client().create_bucket(Bucket=BUCKET)
        yield server, key
    finally:
        server.stop()


def _storage(
    monkeypatch: pytest.MonkeyPatch, server: SeaweedS3, endpoint: str, creds: dict[str, Any]
) -> Storage:
    env = {
        **server.env(BUCKET),
        "PM_S3_ENDPOINT_URL": endpoint,
        "PM_S3_MULTIPART_THRESHOLD": str(PART),
        "PM_S3_MULTIPART_CHUNKSIZE": str(PART),
        **session_tokens.as_env(creds),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    return Storage.for_settings(load_settings())


def _keys(admin: Any, prefix: str) -> list[str]:
    listed = admin.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_temporary_credentials_from_the_server_store_read_list_and_delete(
    sts_server: tuple[SeaweedS3, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, _ = sts_server
    creds = server.temporary_credentials(session_name="s3w-roundtrip")
    assert creds["AccessKeyId"] != server.access_key
    admin = server.admin_client()
    small, big = os.urandom(100_000), os.urandom(PART + 300_000)  # big: two parts
    (tmp_path / "big.bin").write_bytes(big)
    with HttpProxy(server.ports["s3"]) as proxy:
        storage = _storage(monkeypatch, server, proxy.url, creds)
        storage.check_bucket()
        storage.upload_bytes(small, "session/small.bin")
        storage.upload_file(tmp_path / "big.bin", "session/big.bin")
        stored = admin.get_object(Bucket=BUCKET, Key="session/big.bin")["Body"].read()
        assert stored == big, "the two-part object in the bucket differs from the file"
        assert admin.get_object(Bucket=BUCKET, Key="session/small.bin")["Body"].read() == small
        assert storage.get_bytes("session/small.bin") == small
        assert storage.download_file("session/big.bin", tmp_path / "back.bin").read_bytes() == big
        listed = [o.key for o in storage.iter_objects("session/")]
        assert listed == ["session/big.bin", "session/small.bin"]
        url = storage.presigned_get_url("session/small.bin")
        assert "X-Amz-Security-Token=" in url
        with urllib.request.urlopen(url) as answer:  # noqa: S310 - the loopback proxy
            assert answer.read() == small
        storage.delete(["session/small.bin", "session/big.bin"]).raise_for_errors()
        assert _keys(admin, "session/") == []
    assert {"PUT", "POST", "GET", "HEAD"} <= {r.method for r in proxy.requests}
    for request in proxy.requests:
        if "authorization" not in request.headers:  # the presigned GET: token in the query
            assert "X-Amz-Security-Token=" in request.query, request
            continue
        assert request.headers.get("x-amz-security-token") == creds["SessionToken"], request
        signed = request.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        assert "x-amz-security-token" in signed.split(";"), request


@pytest.mark.parametrize("damage", ["altered", "expired"])
def test_an_altered_or_expired_session_token_is_refused_in_one_line(
    sts_server: tuple[SeaweedS3, bytes], monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    server, signing_key = sts_server
    creds = server.temporary_credentials(session_name=f"s3w-{damage}")
    token = creds["SessionToken"]
    admin = server.admin_client()
    admin.put_object(Bucket=BUCKET, Key=f"{damage}/kept.txt", Body=b"kept")
    # The re-signing is right: the same token with a later expiry is accepted.
    later = session_tokens.with_expiry(token, int(time.time()) + 600, signing_key)
    storage = _storage(monkeypatch, server, server.endpoint, {**creds, "SessionToken": later})
    assert storage.get_bytes(f"{damage}/kept.txt") == b"kept"
    if damage == "altered":
        bad = session_tokens.altered(token)
    else:
        bad = session_tokens.with_expiry(token, int(time.time()) - 60, signing_key)
    storage = _storage(monkeypatch, server, server.endpoint, {**creds, "SessionToken": bad})
    refusals: list[str] = []
    for call in (
        lambda: storage.get_bytes(f"{damage}/kept.txt"),
        lambda: storage.upload_bytes(b"new", f"{damage}/new.txt"),
        storage.check_bucket,
    ):
        with pytest.raises(AccessDenied) as refused:
            call()
        refusals.append(str(refused.value))
    for message in refusals:
        assert "\n" not in message, message
        assert "AWS_SESSION_TOKEN" in message, message
        assert "temporary credentials expire" in message, message
        assert bad not in message, "the token is in the message"
        assert creds["SecretAccessKey"] not in message, "the secret is in the message"
    assert _keys(admin, f"{damage}/") == [f"{damage}/kept.txt"]

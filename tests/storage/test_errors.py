"""Failures a person must be able to act on: bad credentials, no bucket, no server, no permission."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.storage.conftest import LimitedServer
from tests.support.services import S3Identity, free_ports

from s3w_storage import (
    AccessDenied,
    BucketNotFound,
    StorageError,
    StorageUnavailable,
    is_transient,
)
from s3w_storage.client import make_client
from s3w_storage.errors import translate
from s3w_storage.objects import Storage
from s3w_storage.settings import StorageSettings, load_settings


def _storage() -> Storage:
    settings = load_settings()
    return Storage(make_client(settings), settings)


def _one_line(exc: BaseException, *secrets: str) -> str:
    message = str(exc)
    assert "\n" not in message, message
    for secret in secrets:
        assert secret not in message, f"secret in message: {message}"
    assert "X-Amz-Signature" not in message
    return message


def test_wrong_credentials(monkeypatch: pytest.MonkeyPatch, storage_env: dict[str, str]) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    storage = _storage()
    with pytest.raises(AccessDenied) as info:
        storage.upload_bytes(b"x", "a.txt")
    message = _one_line(info.value, "wrong-secret-value", storage_env["AWS_SECRET_ACCESS_KEY"])
    assert "rejected the credentials (SignatureDoesNotMatch)" in message
    assert "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in message
    assert info.value.__cause__ is not None  # the client's own error is kept
    assert not is_transient(info.value)


def test_unknown_access_key(monkeypatch: pytest.MonkeyPatch, storage_env: dict[str, str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    with pytest.raises(AccessDenied) as info:
        _storage().check_bucket()
    message = _one_line(info.value, storage_env["AWS_SECRET_ACCESS_KEY"])
    assert "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in message


def test_missing_bucket(monkeypatch: pytest.MonkeyPatch, storage_env: dict[str, str]) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "no-such-bucket-s3w")
    storage = _storage()
    # Not a PUT: SeaweedFS creates a missing bucket on the first PUT by an admin.
    for attempt in (storage.check_bucket, lambda: storage.get_bytes("a.txt")):
        with pytest.raises(BucketNotFound) as info:
            attempt()
        message = _one_line(info.value, storage_env["AWS_SECRET_ACCESS_KEY"])
        assert "bucket no-such-bucket-s3w does not exist at http://127.0.0.1:" in message
        assert "create it, or fix PM_S3_BUCKET_NAME" in message
    with pytest.raises(BucketNotFound):
        list(storage.iter_objects("docvers/"))


@pytest.mark.timeout(120)
def test_unreachable_endpoint_fails_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch, storage_env: dict[str, str]
) -> None:
    (port,) = free_ports(1)  # nothing listens there: connections are refused
    monkeypatch.setenv("PM_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    storage = _storage()  # default retries and timeouts: the call must still return
    with pytest.raises(StorageUnavailable) as info:
        storage.check_bucket()
    message = _one_line(info.value, storage_env["AWS_SECRET_ACCESS_KEY"])
    assert message == (
        f"cannot reach http://127.0.0.1:{port}: check PM_S3_ENDPOINT_URL "
        "(or the region) and the network"
    )
    assert is_transient(info.value)


@pytest.fixture
def limited_bucket(limited_server: LimitedServer) -> str:
    admin = _client_for(limited_server, limited_server.admin)
    name = f"limited-{uuid.uuid4().hex[:12]}"
    admin.create_bucket(Bucket=name)
    admin.put_object(Bucket=name, Key="a.txt", Body=b"readable")
    return name


def _client_for(server: LimitedServer, who: S3Identity) -> Any:
    settings = StorageSettings(
        bucket_name="unused-bucket",
        aws_access_key_id=who.access_key,
        aws_secret_access_key=who.secret_key,
        endpoint_url=server.endpoint,
    )
    return make_client(settings)


def _limited_storage(server: LimitedServer, who: S3Identity, bucket: str) -> Storage:
    settings = StorageSettings(
        bucket_name=bucket,
        aws_access_key_id=who.access_key,
        aws_secret_access_key=who.secret_key,
        endpoint_url=server.endpoint,
    )
    return Storage(make_client(settings), settings)


def test_read_only_credentials_cannot_write(
    limited_server: LimitedServer, limited_bucket: str
) -> None:
    storage = _limited_storage(limited_server, limited_server.read_only, limited_bucket)
    assert storage.get_bytes("a.txt") == b"readable"
    with pytest.raises(AccessDenied) as info:
        storage.upload_bytes(b"x", "b.txt")
    message = _one_line(info.value, limited_server.read_only.secret_key)
    assert f"access denied to b.txt in bucket {limited_bucket} for PutObject" in message
    assert "grant these credentials that permission" in message


def test_head_403_is_access_denied_not_absent(
    limited_server: LimitedServer, limited_bucket: str
) -> None:
    storage = _limited_storage(limited_server, limited_server.list_only, limited_bucket)
    assert [o.key for o in storage.iter_objects()] == ["a.txt"]  # may list
    with pytest.raises(AccessDenied) as info:
        storage.head("a.txt")  # may not read: that is not "absent"
    message = _one_line(info.value, limited_server.list_only.secret_key)
    assert f"access denied to a.txt in bucket {limited_bucket} for HeadObject" in message
    with pytest.raises(AccessDenied):
        storage.exists("a.txt")


def _client_error(code: str, status: int, operation: str = "GetObject") -> ClientError:
    """A ClientError as botocore builds it; a real server cannot be made to throttle on demand."""
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@pytest.mark.parametrize(
    ("code", "status", "kind", "transient"),
    [
        ("SlowDown", 503, StorageUnavailable, True),
        ("InternalError", 500, StorageUnavailable, True),
        ("", 502, StorageUnavailable, True),
        ("RequestTimeout", 400, StorageUnavailable, True),
        ("NoSuchKey", 404, StorageError, False),
        ("AccessDenied", 403, AccessDenied, False),
        ("InvalidAccessKeyId", 403, AccessDenied, False),
        ("NoSuchBucket", 404, BucketNotFound, False),
        ("InvalidArgument", 400, StorageError, False),
    ],
)
def test_translation_table(code: str, status: int, kind: type, transient: bool) -> None:
    exc = _client_error(code, status)
    translated = translate(exc, bucket="b", key="k")
    assert type(translated) is kind or (kind is StorageError and isinstance(translated, kind))
    assert translated.transient is transient
    assert is_transient(exc) is transient
    _one_line(translated)

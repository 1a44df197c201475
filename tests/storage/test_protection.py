"""Archive-grade storage against SeaweedFS: SSE-C on every write and read, storage classes,
object-lock retention on document versions; SSE-S3/SSE-KMS stored on every write path."""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import S3Service, clear_caches

from s3w_storage.client import make_client
from s3w_storage.errors import ConfigError, StorageError
from s3w_storage.keys import docver_key, thumbnail_key
from s3w_storage.objects import Storage
from s3w_storage.settings import load_settings

KEY = base64.b64encode(bytes(range(32))).decode()
MIB = 1024 * 1024


def _storage(monkeypatch: pytest.MonkeyPatch, **env: str) -> Storage:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    settings = load_settings()
    return Storage(make_client(settings), settings)


def _ssec(key: str = KEY) -> dict[str, Any]:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64decode(key)}


@pytest.fixture
def locked_bucket(s3_service: S3Service, monkeypatch: pytest.MonkeyPatch) -> str:
    """A bucket created with object lock (versioning on); its locked versions outlive the
    test, as they must."""
    name = f"l-{uuid.uuid4().hex[:20]}"
    s3_service.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    monkeypatch.setenv("PM_S3_BUCKET_NAME", name)
    return name


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"PM_S3_SSE_C_KEY": "bm90LWEta2V5"},
            "PM_S3_SSE_C_KEY: is not the base64 of a 256-bit key",
        ),
        ({"PM_S3_SSE": "rot13"}, "'rot13' is not an encryption"),
        ({"PM_S3_SSE": "AES256", "PM_S3_SSE_C_KEY": KEY}, "exclude each other"),
        ({"PM_S3_SSE_KMS_KEY_ID": "alias/x"}, "PM_S3_SSE_KMS_KEY_ID needs PM_S3_SSE=aws:kms"),
        ({"PM_S3_OBJECT_LOCK_MODE": "COMPLIANCE"}, "go together"),
        ({"PM_S3_OBJECT_LOCK_MODE": "forever", "PM_S3_RETENTION_DAYS": "1"}, "not a lock mode"),
        ({"PM_S3_STORAGE_CLASS": "cold storage"}, "not a storage class name"),
    ],
)
def test_wrong_archive_settings_are_one_line_each(
    storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value), str(caught.value)
    assert "bm90LWEta2V5" not in str(caught.value)


def test_the_customer_key_is_masked_in_the_settings(
    storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_S3_SSE_C_KEY", KEY)
    settings = load_settings()
    assert KEY not in repr(settings)
    assert KEY not in str(settings.model_dump())


# ----------------------------------------------------------------------------- SSE-C


def test_sse_c_on_every_write_and_read(
    storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, s3: Any, tmp_path: Path
) -> None:
    storage = _storage(
        monkeypatch,
        PM_S3_SSE_C_KEY=KEY,
        PM_S3_MULTIPART_THRESHOLD=str(5 * MIB),
        PM_S3_MULTIPART_CHUNKSIZE=str(5 * MIB),
    )
    bucket = storage.bucket
    small, large = tmp_path / "small.pdf", tmp_path / "large.pdf"
    small.write_bytes(b"%PDF small")
    large.write_bytes(os.urandom(11 * MIB))
    storage.upload_file(small, "docvers/a/small.pdf")
    storage.upload_file(large, "docvers/a/large.pdf")
    storage.upload_bytes(b"jpeg", "thumbnails/a.jpg")
    failed = storage.upload_many([(small, "many/small.pdf"), (large, "many/large.pdf")])
    assert [error for _key, error in failed if error is not None] == []

    for key in ("docvers/a/small.pdf", "docvers/a/large.pdf", "thumbnails/a.jpg", "many/large.pdf"):
        with pytest.raises(ClientError) as refused:  # without the key the store refuses
            s3.head_object(Bucket=bucket, Key=key)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, key
        answer = s3.head_object(Bucket=bucket, Key=key, **_ssec())
        assert answer["SSECustomerAlgorithm"] == "AES256", key

    # Reads through s3w: whole GET, ranged parallel download, HEAD.
    assert storage.get_bytes("thumbnails/a.jpg") == b"jpeg"
    copy = storage.download_file("docvers/a/large.pdf", tmp_path / "back.pdf")
    assert copy.read_bytes() == large.read_bytes()
    info = storage.head("docvers/a/small.pdf")
    assert info is not None
    assert info.size == len(b"%PDF small")

    # A presigned GET signs the key's headers; the downloader sends them.
    url = storage.presigned_get_url("docvers/a/small.pdf")
    assert "x-amz-server-side-encryption-customer-algorithm" in url.lower()
    assert KEY not in url
    assert urllib.parse.quote(KEY, safe="") not in url
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url, timeout=10)  # noqa: S310 - loopback test server
    raw = base64.b64decode(KEY)
    import hashlib

    request = urllib.request.Request(  # noqa: S310 - loopback test server
        url,
        headers={
            "x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": KEY,
            "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(
                hashlib.md5(raw, usedforsecurity=False).digest()
            ).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        assert answer.read() == b"%PDF small"


def test_a_wrong_customer_key_reads_nothing(
    storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _storage(monkeypatch, PM_S3_SSE_C_KEY=KEY)
    writer.upload_bytes(b"secret", "docvers/b/x.pdf")
    other = base64.b64encode(os.urandom(32)).decode()
    reader = _storage(monkeypatch, PM_S3_SSE_C_KEY=other)
    with pytest.raises(StorageError):
        reader.get_bytes("docvers/b/x.pdf")


# ----------------------------------------------------------------------- storage classes


def test_docvers_get_their_own_storage_class(
    storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, s3: Any, tmp_path: Path
) -> None:
    storage = _storage(
        monkeypatch,
        PM_S3_STORAGE_CLASS="STANDARD",
        PM_S3_DOCVERS_STORAGE_CLASS="STANDARD_IA",
        PM_S3_MULTIPART_THRESHOLD=str(5 * MIB),
        PM_S3_MULTIPART_CHUNKSIZE=str(5 * MIB),
    )
    version, doc = uuid.uuid4(), uuid.uuid4()
    large = tmp_path / "large.pdf"
    large.write_bytes(os.urandom(6 * MIB))
    storage.upload_bytes(b"%PDF", docver_key(version, "a.pdf"))
    storage.upload_file(large, docver_key(version, "large.pdf"))
    storage.upload_bytes(b"jpeg", thumbnail_key(doc))
    storage.upload_many([(large, "other/large.pdf")])

    def klass(key: str) -> str:
        return str(s3.head_object(Bucket=storage.bucket, Key=key).get("StorageClass", "STANDARD"))

    assert klass(docver_key(version, "a.pdf")) == "STANDARD_IA"
    assert klass(docver_key(version, "large.pdf")) == "STANDARD_IA"
    assert klass(thumbnail_key(doc)) == "STANDARD"
    assert klass("other/large.pdf") == "STANDARD"


# ------------------------------------------------------------------------ object lock


def test_document_versions_are_locked_and_thumbnails_are_not(
    storage_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    locked_bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    storage = _storage(
        monkeypatch,
        PM_S3_OBJECT_LOCK_MODE="COMPLIANCE",
        PM_S3_RETENTION_DAYS="1",
        PM_S3_SSE_C_KEY=KEY,
        PM_S3_MULTIPART_THRESHOLD=str(5 * MIB),
        PM_S3_MULTIPART_CHUNKSIZE=str(5 * MIB),
    )
    version, doc = uuid.uuid4(), uuid.uuid4()
    large = tmp_path / "large.pdf"
    large.write_bytes(os.urandom(6 * MIB))
    before = datetime.now(UTC)
    storage.upload_bytes(b"%PDF", docver_key(version, "a.pdf"))
    storage.upload_file(large, docver_key(version, "large.pdf"))
    storage.upload_bytes(b"jpeg", thumbnail_key(doc))

    for name in ("a.pdf", "large.pdf"):
        key = docver_key(version, name)
        head = s3.head_object(Bucket=locked_bucket, Key=key, **_ssec())
        assert head["ObjectLockMode"] == "COMPLIANCE", key
        until = head["ObjectLockRetainUntilDate"]
        assert before + timedelta(hours=23) < until < before + timedelta(days=1, hours=1), until
        with pytest.raises(ClientError) as denied:
            s3.delete_object(Bucket=locked_bucket, Key=key, VersionId=head["VersionId"])
        assert denied.value.response["Error"]["Code"] == "AccessDenied", key
    assert storage.get_bytes(docver_key(version, "a.pdf")) == b"%PDF"
    thumb = s3.head_object(Bucket=locked_bucket, Key=thumbnail_key(doc), **_ssec())
    assert "ObjectLockMode" not in thumb
    s3.delete_object(Bucket=locked_bucket, Key=thumbnail_key(doc), VersionId=thumb["VersionId"])


# ------------------------------------------------------------------- SSE-S3 / SSE-KMS


@pytest.mark.parametrize(
    ("env", "stored"),
    [
        ({"PM_S3_SSE": "AES256"}, {"ServerSideEncryption": "AES256"}),
        (
            {"PM_S3_SSE": "aws:kms", "PM_S3_SSE_KMS_KEY_ID": "papermerge"},
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "papermerge"},
        ),
    ],
)
def test_sse_s3_and_kms_are_stored_on_every_write_path(
    storage_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    locked_bucket: str,
    s3: Any,
    tmp_path: Path,
    env: dict[str, str],
    stored: dict[str, str],
) -> None:
    """The test SeaweedFS holds an SSE-S3 key and a local KMS (tests/support/services.py):
    every write path (single PUT, multipart, ``upload_many``, the boto3 PUT of a locked
    document version) leaves an object its HEAD shows encrypted that way, and reads back."""
    storage = _storage(
        monkeypatch,
        PM_S3_OBJECT_LOCK_MODE="GOVERNANCE",
        PM_S3_RETENTION_DAYS="1",
        PM_S3_MULTIPART_THRESHOLD=str(5 * MIB),
        PM_S3_MULTIPART_CHUNKSIZE=str(5 * MIB),
        **env,
    )
    version = uuid.uuid4()
    small, large = tmp_path / "s.pdf", tmp_path / "l.pdf"
    small.write_bytes(b"%PDF")
    large.write_bytes(os.urandom(6 * MIB))
    storage.upload_file(small, docver_key(version, "s.pdf"))  # locked: the boto3 PUT
    storage.upload_file(large, "other/l.pdf")  # multipart
    storage.upload_bytes(b"jpeg", thumbnail_key(version))  # single PUT
    failed = storage.upload_many([(small, "many/s.pdf"), (large, "many/l.pdf")])
    assert [error for _key, error in failed if error is not None] == []

    written = {
        docver_key(version, "s.pdf"): small.read_bytes(),
        "other/l.pdf": large.read_bytes(),
        thumbnail_key(version): b"jpeg",
        "many/s.pdf": small.read_bytes(),
        "many/l.pdf": large.read_bytes(),
    }
    for key, data in written.items():
        head = s3.head_object(Bucket=locked_bucket, Key=key)
        assert {name: head.get(name) for name in stored} == stored, (key, head)
        assert storage.get_bytes(key) == data, key
    assert (
        s3.head_object(Bucket=locked_bucket, Key=docver_key(version, "s.pdf"))["ObjectLockMode"]
        == "GOVERNANCE"
    )

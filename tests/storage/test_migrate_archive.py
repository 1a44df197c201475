"""Migrating an archive between two real SeaweedFS servers: SSE-C sources are read with
their key, the target's encryption and class apply, a document version keeps the rest of
its retention (or the migration is refused before copying, saying why), and verify checks
all three."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.storage.test_migrate import Side
from tests.support import services
from tests.support.archive import MiB, listed, sse_c_headers

from s3w_storage.errors import ConfigError
from s3w_storage.keys import docver_key, thumbnail_key
from s3w_storage.migrate import MigrateOptions, migrate, verify

SOURCE_KEY = base64.b64encode(bytes(range(32))).decode()
TARGET_KEY = base64.b64encode(bytes(range(32, 64))).decode()
SMALL = {"multipart_threshold": 5 * MiB, "multipart_chunksize": 5 * MiB}


def _bucket(server: Any, *, locked: bool) -> str:
    """A new bucket; locked versions outlive the test, as they must."""
    name = f"a-{uuid.uuid4().hex[:20]}"
    Side(server, name).s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
    return name


@pytest.fixture
def archive(s3_service: Any) -> tuple[Side, dict[str, bytes]]:
    """A locked source bucket whose document versions are kept three days, encrypted with
    the source's customer key; one version is multipart."""
    side = Side(
        s3_service,
        _bucket(s3_service, locked=True),
        sse_c_key=SOURCE_KEY,
        object_lock_mode="COMPLIANCE",
        retention_days=3,
        **SMALL,
    )
    version = uuid.uuid4()
    written = {
        docver_key(version, "small.pdf"): b"%PDF small",
        docver_key(version, "large.pdf"): os.urandom(
            9 * MiB
        ),  # above IN_MEMORY: a streamed multipart copy
        thumbnail_key(uuid.uuid4()): b"\xff\xd8 thumb",
    }
    for key, data in written.items():
        if len(data) < MiB:
            side.storage.upload_bytes(data, key)
        else:
            _upload_large(side, key, data)
    return side, written


def _upload_large(side: Side, key: str, data: bytes) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile() as handle:
        handle.write(data)
        handle.flush()
        side.storage.upload_file(handle.name, key)


def test_a_migration_keeps_encryption_class_and_the_rest_of_the_retention(
    archive: tuple[Side, dict[str, bytes]], other_server: services.SeaweedS3
) -> None:
    source, written = archive
    target = Side(
        other_server,
        _bucket(other_server, locked=True),
        sse_c_key=TARGET_KEY,
        docvers_storage_class="STANDARD_IA",
        object_lock_mode="COMPLIANCE",
        retention_days=1,
        **SMALL,
    )
    result = migrate(source.storage, target.storage)
    assert result.ok, result.failures
    assert (result.streamed_copies, result.multipart_copies) == (2, 1)

    for key, data in written.items():
        src = source.s3.head_object(Bucket=source.bucket, Key=key, **sse_c_headers(SOURCE_KEY))
        got = target.s3.get_object(Bucket=target.bucket, Key=key, **sse_c_headers(TARGET_KEY))
        assert got["Body"].read() == data, key
        assert got["SSECustomerAlgorithm"] == "AES256", key
        if key.startswith("docvers/"):
            assert got["StorageClass"] == "STANDARD_IA", key
            assert got["ObjectLockMode"] == "COMPLIANCE", key
            # Three days at the source, one by the target's settings: the three are kept.
            assert got["ObjectLockRetainUntilDate"] >= src["ObjectLockRetainUntilDate"], key
            assert got["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=2)
        else:
            assert "ObjectLockMode" not in got, key
    report = verify(source.storage, target.storage)
    assert report.ok, report.to_dict()


def test_a_target_without_object_lock_is_refused_before_anything_is_copied(
    archive: tuple[Side, dict[str, bytes]], other_server: services.SeaweedS3
) -> None:
    source, written = archive
    target = Side(other_server, _bucket(other_server, locked=False), sse_c_key=TARGET_KEY, **SMALL)
    for dry_run in (True, False):
        with pytest.raises(ConfigError) as refused:
            migrate(source.storage, target.storage, MigrateOptions(dry_run=dry_run))
        why = str(refused.value)
        assert f"bucket {target.bucket} has no object lock, but docvers/" in why, why
        assert "is retained until " in why, why
        assert "nothing was copied" in why, why
        assert "create the target bucket with object lock" in why, why
    assert listed(target.s3, target.bucket) == {}  # the target untouched
    report = verify(source.storage, target.storage)
    assert sorted(report.missing) == sorted(written), report.to_dict()


def test_a_rerun_still_reports_copies_that_lack_the_sources_retention(
    archive: tuple[Side, dict[str, bytes]], other_server: services.SeaweedS3
) -> None:
    """A target that already holds the objects, without retention (as an earlier migration
    left them): the rerun is refused again instead of finding everything unchanged."""
    source, written = archive
    target = Side(other_server, _bucket(other_server, locked=False), **SMALL)
    for key, data in written.items():
        target.s3.put_object(Bucket=target.bucket, Key=key, Body=data)
    with pytest.raises(ConfigError, match="has no object lock, but docvers/"):
        migrate(source.storage, target.storage)
    report = verify(source.storage, target.storage)
    docvers = sorted(k for k in written if k.startswith("docvers/"))
    assert sorted(d.key for d in report.different) == docvers, report.to_dict()
    assert all(d.why.startswith("retained until none != ") for d in report.different)


def test_target_settings_asking_for_a_lock_the_bucket_cannot_hold_are_refused(
    s3_service: Any, other_server: services.SeaweedS3
) -> None:
    source = Side(s3_service, _bucket(s3_service, locked=False))
    source.storage.upload_bytes(b"%PDF", docver_key(uuid.uuid4(), "a.pdf"))
    target = Side(other_server, _bucket(other_server, locked=False), object_lock_mode="GOVERNANCE")
    with pytest.raises(ConfigError) as refused:
        migrate(source.storage, target.storage)
    assert "the target's PM_S3_OBJECT_LOCK_MODE=GOVERNANCE" in str(refused.value)
    assert "or unset PM_S3_OBJECT_LOCK_MODE in the target's settings" in str(refused.value)
    assert listed(target.s3, target.bucket) == {}


def test_a_server_side_copy_reads_the_sse_c_source_with_its_key(s3_service: Any) -> None:
    source = Side(s3_service, _bucket(s3_service, locked=False), sse_c_key=SOURCE_KEY)
    target = Side(
        s3_service,
        _bucket(s3_service, locked=False),
        sse_c_key=TARGET_KEY,
        storage_class="STANDARD_IA",
    )
    source.storage.upload_bytes(b"%PDF", "docvers/x/a.pdf")
    result = migrate(source.storage, target.storage)
    assert result.ok, result.failures
    assert result.server_side_copies == 1
    got = target.s3.get_object(
        Bucket=target.bucket, Key="docvers/x/a.pdf", **sse_c_headers(TARGET_KEY)
    )
    assert got["Body"].read() == b"%PDF"
    assert got["StorageClass"] == "STANDARD_IA"
    assert verify(source.storage, target.storage).ok

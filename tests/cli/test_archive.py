"""Archive-grade storage through the commands: ``s3w sync``, ``restore`` and ``audit`` read
SSE-C objects with the customer key, and ``audit`` lists orphans an object lock retains."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.cli.test_audit import env  # noqa: F401 - the audit's database and broker
from tests.cli.test_documents import pdf_bytes
from tests.conftest import S3Service, clear_caches
from tests.support import papermerge as pm
from tests.support.archive import sse_c_headers

Run = Callable[..., Any]
KEY = base64.b64encode(bytes(range(64, 96))).decode()
SSE_C = sse_c_headers(KEY)


@pytest.fixture
def archive(
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    s3_service: S3Service,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """A bucket with object lock, and s3w set to encrypt with a customer key and lock
    document versions for a day; the locked versions outlive the test, as they must."""
    name = f"l-{uuid.uuid4().hex[:20]}"
    s3_service.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    for variable, value in {
        "PM_S3_BUCKET_NAME": name,
        "PM_S3_SSE_C_KEY": KEY,
        "PM_S3_OBJECT_LOCK_MODE": "GOVERNANCE",
        "PM_S3_RETENTION_DAYS": "1",
    }.items():
        monkeypatch.setenv(variable, value)
    clear_caches()
    return name


def test_sync_restore_and_audit_read_sse_c_objects_and_list_retained_ones(
    archive: str,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    s3w: Run,
    media_root: Path,
    s3: Any,
    tmp_path: Path,
) -> None:
    user = pm.insert_user(env["db"])
    doc = pm.insert_document(env["db"], user)
    pm.media_file(media_root, doc.version, pdf_bytes())
    first = json.loads(s3w("sync", str(media_root), "--json", "--no-progress").stdout)
    assert first["uploaded"] == 1, first
    key = pm.docver_key(doc.version.id, doc.version.file_name)
    head = s3.head_object(Bucket=archive, Key=key, **SSE_C)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    again = json.loads(s3w("sync", str(media_root), "--checksum", "--json", "--no-progress").stdout)
    assert again["uploaded"] == 0, again  # the checksum read of the SSE-C object matched

    restored = tmp_path / "restored"
    s3w("restore", str(restored), "--checksum", "--json", "--no-progress")
    assert (restored / key).read_bytes() == (media_root / key).read_bytes()

    orphan = pm.docver_key(uuid.uuid4(), "gone.pdf")
    until = datetime.now(UTC) + timedelta(days=1)
    s3.put_object(
        Bucket=archive,
        Key=orphan,
        Body=b"%PDF gone",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        **SSE_C,
    )
    report = json.loads(s3w("audit", "--checksum", "--json", "--no-progress").stdout)
    assert report["orphans"]["count"] == 0, report
    assert report["retained"]["count"] == 1, report
    assert report["retained"]["items"][0].startswith(f"{orphan} (retained until ")
    assert report["different"]["count"] == 0, report


def test_doctor_checks_versioning_and_object_lock_against_the_settings(
    s3w: Run, storage_env: dict[str, str], s3_service: S3Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_S3_OBJECT_LOCK_MODE", "COMPLIANCE")
    monkeypatch.setenv("PM_S3_RETENTION_DAYS", "30")
    clear_caches()
    plain = json.loads(s3w("doctor", "--json", code=1).stdout)
    found = {c["check"]: c for c in plain}
    assert not found["versioning"]["ok"]
    assert "versioning never enabled" in found["versioning"]["detail"]
    assert not found["lock"]["ok"]
    assert "has no object lock, but PM_S3_OBJECT_LOCK_MODE=COMPLIANCE" in found["lock"]["detail"]
    assert "create a bucket with object lock" in found["lock"]["detail"]

    name = f"l-{uuid.uuid4().hex[:20]}"
    s3_service.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    monkeypatch.setenv("PM_S3_BUCKET_NAME", name)
    clear_caches()
    locked = {c["check"]: c for c in json.loads(s3w("doctor", "--json", code=None).stdout)}
    assert locked["versioning"]["ok"], locked
    assert locked["lock"]["ok"], locked
    assert "kept 30 days (COMPLIANCE)" in locked["lock"]["detail"]


def test_info_and_config_name_the_archive_settings_and_mask_the_key(
    s3w: Run, storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_S3_SSE_C_KEY", KEY)
    monkeypatch.setenv("PM_S3_DOCVERS_STORAGE_CLASS", "STANDARD_IA")
    clear_caches()
    info = json.loads(s3w("info", "--json").stdout)
    assert info["archive"] == "SSE-C (customer key set); docvers class STANDARD_IA"
    config = json.loads(s3w("config").stdout)
    assert config["storage"]["sse_c_key"] == "********", config["storage"]
    # (the s3w fixture also checks that KEY is in neither output)

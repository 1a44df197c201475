"""Migrate between two real SeaweedFS servers with different credentials: copy, resume,
re-copy what changed, verify, server-side copy, and the target's settings."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from tests.support import services
from tests.support.archive import MiB, Written, assert_copied, fill_archive, listed, put_multipart

from s3w_storage import ConfigError
from s3w_storage.client import make_client
from s3w_storage.migrate import (
    ExpectedKeys,
    MigrateOptions,
    build_plan,
    mask,
    migrate,
    read_env_file,
    switch_variables,
    target_settings,
    verify,
)
from s3w_storage.objects import Storage
from s3w_storage.settings import StorageSettings

SOURCE_PREFIX = "pm/archive"


class Side:
    """One server and bucket: a Storage for the code under test, a boto3 client for checks."""

    def __init__(self, server: Any, bucket: str, prefix: str = "", **tuning: Any) -> None:
        self.server, self.bucket, self.prefix = server, bucket, prefix
        self.settings = StorageSettings(
            backend="aws",
            bucket_name=bucket,
            prefix=prefix,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            aws_region_name="us-east-1",
            endpoint_url=server.endpoint,
            **tuning,
        )
        self.storage = Storage(make_client(self.settings), self.settings)
        self.s3 = self.storage.client

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative


@pytest.fixture
def source(s3_service: Any, bucket: str) -> Side:
    return Side(s3_service, bucket, SOURCE_PREFIX)


@pytest.fixture
def target(other_server: services.SeaweedS3) -> Iterator[Side]:
    """A fresh bucket on the other server, no prefix; small parts so 11 MiB is multipart."""
    side = Side(
        other_server,
        f"t-{uuid.uuid4().hex[:20]}",
        multipart_threshold=5 * MiB,
        multipart_chunksize=5 * MiB,
    )
    side.s3.create_bucket(Bucket=side.bucket)
    yield side
    for key in listed(side.s3, side.bucket):
        side.s3.delete_object(Bucket=side.bucket, Key=key)
    for upload in side.s3.list_multipart_uploads(Bucket=side.bucket).get("Uploads", []):
        side.s3.abort_multipart_upload(
            Bucket=side.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    side.s3.delete_bucket(Bucket=side.bucket)


def test_full_migrate_copies_everything_and_a_rerun_copies_nothing(
    source: Side, target: Side
) -> None:
    objects = fill_archive(source.s3, source.bucket, SOURCE_PREFIX, large=1)
    total = sum(len(o.data) for o in objects.values())

    result = migrate(source.storage, target.storage)

    assert result.ok, result.failures
    assert (result.copied, result.copied_bytes) == (len(objects), total)
    assert result.server_side is False
    assert result.server_side_copies == 0
    assert result.multipart_copies == 1
    assert result.streamed_copies == len(objects) - 1
    assert result.reasons == {"new": len(objects)}
    assert set(listed(target.s3, target.bucket)) == set(objects)
    assert_copied(target.s3, target.bucket, "", objects)

    again = migrate(source.storage, target.storage)
    assert (again.copied, again.planned, again.unchanged) == (0, 0, len(objects))
    # The multipart source (6 MiB parts) and its copy (5 MiB parts) have different ETags: the
    # source was read once to compute the copy's ETag from its parts, not copied again.
    assert again.hashed == 1

    report = verify(source.storage, target.storage)
    assert report.ok, report.to_dict()
    assert (report.source_objects, report.target_objects, report.matched) == (
        len(objects),
        len(objects),
        len(objects),
    )


def test_dry_run_plans_without_copying(source: Side, target: Side) -> None:
    objects = fill_archive(source.s3, source.bucket, SOURCE_PREFIX)
    result = migrate(source.storage, target.storage, MigrateOptions(dry_run=True))
    assert (result.planned, result.planned_bytes, result.copied) == (
        len(objects),
        sum(len(o.data) for o in objects.values()),
        0,
    )
    assert listed(target.s3, target.bucket) == {}


def test_interrupted_migrate_resumes_with_what_is_left(source: Side, target: Side) -> None:
    objects = fill_archive(source.s3, source.bucket, SOURCE_PREFIX)

    first = migrate(source.storage, target.storage, MigrateOptions(limit=5))
    assert (first.copied, first.deferred) == (5, len(objects) - 5)
    partial = verify(source.storage, target.storage)
    assert not partial.ok
    assert len(partial.missing) == len(objects) - 5

    second = migrate(source.storage, target.storage)
    assert (second.copied, second.unchanged) == (len(objects) - 5, 5)
    assert verify(source.storage, target.storage).ok
    assert_copied(target.s3, target.bucket, "", objects)


def test_interrupted_multipart_copy_is_aborted_and_then_completed(
    source: Side, target: Side
) -> None:
    objects = fill_archive(source.s3, source.bucket, SOURCE_PREFIX, documents=0, large=1)

    def interrupt(objects_done: int, size: int) -> None:
        if size:  # the first part of the large object has gone up
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate(source.storage, target.storage, progress=interrupt)
    assert target.s3.list_multipart_uploads(Bucket=target.bucket).get("Uploads", []) == []
    (big,) = [k for k, o in objects.items() if len(o.data) > 10 * MiB]
    assert big not in listed(target.s3, target.bucket)

    result = migrate(source.storage, target.storage)
    assert result.ok
    assert (result.copied, result.multipart_copies) == (1, 1)
    assert_copied(target.s3, target.bucket, "", objects)


def test_a_killed_runs_multipart_upload_is_aborted_by_the_next_run(
    source: Side, target: Side
) -> None:
    objects = fill_archive(source.s3, source.bucket, SOURCE_PREFIX, documents=0, large=1)
    (big,) = [k for k, o in objects.items() if len(o.data) > 10 * MiB]
    # What a killed process leaves: an upload with a part and no completion.
    left = target.s3.create_multipart_upload(Bucket=target.bucket, Key=big)
    target.s3.upload_part(
        Bucket=target.bucket, Key=big, UploadId=left["UploadId"], PartNumber=1, Body=b"x" * MiB
    )
    result = migrate(source.storage, target.storage)
    assert (result.aborted_uploads, result.copied) == (1, len(objects))
    assert target.s3.list_multipart_uploads(Bucket=target.bucket).get("Uploads", []) == []


def test_changed_objects_are_copied_again(source: Side, target: Side) -> None:
    objects = fill_archive(source.s3, source.bucket, SOURCE_PREFIX)
    assert migrate(source.storage, target.storage).copied == len(objects)
    same_size, new_size = sorted(k for k in objects if k.startswith("docvers/"))[:2]
    changed = {
        same_size: Written(bytes(reversed(objects[same_size].data)), "application/pdf", {}),
        new_size: Written(objects[new_size].data + b"more", "application/pdf", {}),
    }
    for key, item in changed.items():
        source.s3.put_object(
            Bucket=source.bucket, Key=source.key(key), Body=item.data, ContentType="application/pdf"
        )

    plan = build_plan(source.storage, target.storage)
    assert {(c.key, c.reason) for c in plan.copies} == {
        (same_size, "checksum"),
        (new_size, "size"),
    }
    result = migrate(source.storage, target.storage)
    assert (result.copied, result.unchanged) == (2, len(objects) - 2)
    assert_copied(target.s3, target.bucket, "", {**objects, **changed})


def test_verify_reports_deleted_corrupted_and_extra_target_objects(
    source: Side, target: Side
) -> None:
    objects = fill_archive(source.s3, source.bucket, SOURCE_PREFIX, large=1)
    migrate(source.storage, target.storage)
    small = sorted(k for k, o in objects.items() if len(o.data) < MiB)
    deleted, corrupted, resized = small[:3]
    (big,) = [k for k, o in objects.items() if len(o.data) > 10 * MiB]
    target.s3.delete_object(Bucket=target.bucket, Key=deleted)
    data = bytearray(objects[corrupted].data)
    data[100] ^= 0xFF
    target.s3.put_object(Bucket=target.bucket, Key=corrupted, Body=bytes(data))
    target.s3.put_object(Bucket=target.bucket, Key=resized, Body=b"short")
    # A large object corrupted as a multipart upload with no stored MD5: only reading tells.
    bad = bytearray(objects[big].data)
    bad[-1] ^= 0xFF
    put_multipart(target.s3, target.bucket, big, bytes(bad), "application/pdf", part=5 * MiB)
    target.s3.put_object(Bucket=target.bucket, Key="stray.txt", Body=b"not in the source")

    report = verify(source.storage, target.storage)

    assert not report.ok
    assert report.missing == [deleted]
    assert report.extra == ["stray.txt"]
    assert {(d.key, d.why) for d in report.different} == {
        (corrupted, "checksum"),
        (resized, f"size {len(objects[resized].data)} != 5"),
        (big, "checksum"),
    }
    assert report.matched == len(objects) - 4

    fixed = migrate(source.storage, target.storage)
    assert fixed.copied == 4
    after = verify(source.storage, target.storage)
    assert (after.missing, after.different, after.extra) == ([], [], ["stray.txt"])


def test_verify_with_expected_database_keys(source: Side, target: Side) -> None:
    objects = fill_archive(source.s3, source.bucket, SOURCE_PREFIX)
    migrate(source.storage, target.storage)
    docver = next(k for k in objects if k.startswith("docvers/"))
    preview = next(k for k in objects if k.startswith("previews/pages/"))
    page_id = preview.split("/")[4]
    target.s3.delete_object(Bucket=target.bucket, Key=preview)
    gone = "thumbnails/jpg/00/00/00000000-0000-0000-0000-000000000000/sm.jpg"

    report = verify(
        source.storage,
        target.storage,
        expected=ExpectedKeys(required={docver, gone}, page_ids={page_id}),
    )

    assert report.db_missing == [preview]
    assert report.db_absent_everywhere == [gone]
    assert report.db_checked == 2 + 2  # two required keys, the page's two previews
    assert not report.ok


def test_server_side_copy_within_one_server(source: Side, s3_service: Any) -> None:
    objects = fill_archive(source.s3, source.bucket, SOURCE_PREFIX, large=1)
    other = Side(s3_service, f"t-{uuid.uuid4().hex[:20]}")
    other.s3.create_bucket(Bucket=other.bucket)
    try:
        result = migrate(source.storage, other.storage)
        assert result.ok, result.failures
        assert result.server_side is True
        assert (result.server_side_copies, result.streamed_copies, result.multipart_copies) == (
            len(objects),
            0,
            0,
        )
        assert result.copied_bytes == sum(len(o.data) for o in objects.values())
        assert_copied(other.s3, other.bucket, "", objects)
        assert verify(source.storage, other.storage).ok
        assert migrate(source.storage, other.storage).copied == 0
    finally:
        for key in listed(other.s3, other.bucket):
            other.s3.delete_object(Bucket=other.bucket, Key=key)
        other.s3.delete_bucket(Bucket=other.bucket)


def test_target_overlapping_the_source_is_refused(source: Side, s3_service: Any) -> None:
    for prefix in (SOURCE_PREFIX, "pm", SOURCE_PREFIX + "/copy", ""):
        inside = Side(s3_service, source.bucket, prefix)
        with pytest.raises(ConfigError, match="overlaps the source"):
            build_plan(source.storage, inside.storage)


# ------------------------------------------------------------------- target settings


def test_env_file_is_parsed_without_touching_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "source-secret-in-env")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "source-key-in-env")
    env = tmp_path / "r2.env"
    env.write_text(
        "# the new provider\n"
        "export STORAGE_BACKEND=cloudflare\n"
        'PM_S3_BUCKET_NAME="papermerge-r2"\n'
        "PM_PREFIX='tenant/a'  \n"
        "R2_ACCOUNT_ID=0123456789abcdef0123456789abcdef # the dashboard's id\n"
        "R2_ACCESS_KEY_ID=r2-key-id-123\n"
        "R2_SECRET_ACCESS_KEY=r2-secret-value\n"
        "PM_DB_URL=postgresql://ignored\n"
        "\n"
    )
    assert read_env_file(env)["PM_PREFIX"] == "tenant/a"
    source = StorageSettings(bucket_name="old-bucket")
    settings = target_settings(source, env_file=env)
    assert (settings.backend, settings.bucket_name, settings.prefix) == (
        "cloudflare",
        "papermerge-r2",
        "tenant/a",
    )
    assert settings.credentials() == ("r2-key-id-123", "r2-secret-value")
    assert settings.aws_secret_access_key is None  # not taken from os.environ
    assert settings.effective_endpoint == (
        "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
    )


def test_env_file_problems_name_the_file_and_never_the_values(tmp_path: Path) -> None:
    env = tmp_path / "bad.env"
    env.write_text("PM_S3_BUCKET_NAME=b\nAWS_ACCESS_KEY_ID=k\nPM_S3_MAX_ATTEMPTS=lots\n")
    with pytest.raises(ConfigError, match="PM_S3_MAX_ATTEMPTS") as caught:
        target_settings(StorageSettings(), env_file=env)
    assert str(env) in str(caught.value)
    env.write_text("PM_S3_BUCKET_NAME=b\nAWS_ACCESS_KEY_ID=k\n")
    with pytest.raises(ConfigError, match="AWS_SECRET_ACCESS_KEY is not set"):
        target_settings(StorageSettings(), env_file=env)
    env.write_text("PM_S3_BUCKET_NAME=b\nthis line holds secret-123\n")
    with pytest.raises(ConfigError, match="line 2") as caught:
        read_env_file(env)
    assert "secret-123" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        read_env_file(tmp_path / "absent.env")


def test_flags_override_the_source_settings_and_switch_lists_masked_changes() -> None:
    source = StorageSettings(
        bucket_name="old-bucket",
        prefix="pm",
        aws_access_key_id="AKIAOLDKEY0000",
        aws_secret_access_key="old-secret",
        endpoint_url="http://127.0.0.1:9000",
    )
    target = target_settings(source, overrides={"PM_S3_BUCKET_NAME": "new-bucket", "PM_PREFIX": ""})
    assert (target.bucket_name, target.prefix) == ("new-bucket", "")
    assert target.credentials() == ("AKIAOLDKEY0000", "old-secret")
    assert switch_variables(source, target) == [
        ("PM_S3_BUCKET_NAME", "new-bucket"),
        ("PM_PREFIX", None),
    ]

    r2 = target_settings(
        source,
        overrides={
            "STORAGE_BACKEND": "cloudflare",
            "R2_ACCOUNT_ID": "acc0123",
            "R2_ACCESS_KEY_ID": "r2-access-key-id",
            "R2_SECRET_ACCESS_KEY": "r2-very-secret",
            "PM_S3_ENDPOINT_URL": None,
        },
    )
    changes = dict(switch_variables(source, r2))
    assert changes["STORAGE_BACKEND"] == "cloudflare"
    assert changes["R2_SECRET_ACCESS_KEY"] == "********"
    assert changes["R2_ACCESS_KEY_ID"] == "r2-a********"
    assert changes["PM_S3_ENDPOINT_URL"] is None
    assert "r2-very-secret" not in repr(changes)
    assert mask("AWS_SECRET_ACCESS_KEY", "x") == "********"


def test_copy_reads_are_signed_and_the_signature_is_checked(source: Side) -> None:
    from s3w_storage.dataplane import DataPlane
    from s3w_storage.errors import AccessDenied

    key = source.key("imports/a+b=c&d~e (1).txt")
    source.s3.put_object(Bucket=source.bucket, Key=key, Body=b"signed")
    body, headers = DataPlane(source.settings).get(key)
    assert body == b"signed"
    assert headers["ETag"].strip('"') == hashlib.md5(b"signed", usedforsecurity=False).hexdigest()
    wrong = source.settings.model_copy(update={"aws_secret_access_key": SecretStr("not-it")})
    with pytest.raises(AccessDenied, match="SignatureDoesNotMatch"):
        DataPlane(wrong).get(key)

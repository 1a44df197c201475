"""``s3w audit`` on a seeded archive (Papermerge's schema in real PostgreSQL, SeaweedFS, a
media root, Redis as the broker): exactly the seeded defects are reported, ``--repair``
fixes all but the orphans, ``--delete-orphans`` is bounded, ``--checksum`` catches an
object overwritten with other bytes of the same size."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.cli.test_documents import pdf_bytes
from tests.support import papermerge as pm
from tests.tasks.test_backfill import _messages

Run = Callable[..., Any]
SIZES = ("sm", "md", "lg", "xl")


@pytest.fixture
def env(
    storage_env: dict[str, str],
    pg_url: str,
    media_root: Path,
    redis_server_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    pm.create_schema(pg_url)
    queue = f"au-{uuid.uuid4().hex[:8]}"
    broker = f"{redis_server_url.rstrip('/')}/6"
    monkeypatch.setenv("PM_DB_URL", pg_url)
    monkeypatch.setenv("PM_MEDIA_ROOT", str(media_root))
    monkeypatch.setenv("PM_REDIS_URL", broker)
    monkeypatch.setenv("PM_S3_PREVIEW_QUEUE_NAME", queue)
    return {"db": pg_url, "broker": broker, "queue": queue}


def _audit(s3w: Run, *args: str, code: int | None = None) -> dict[str, Any]:
    result = s3w("audit", *args, "--json", "--no-progress", code=code)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _found(report: dict[str, Any]) -> dict[str, list[str]]:
    kinds = (
        "missing_in_bucket",
        "missing_on_disk",
        "different",
        "missing_thumbnails",
        "missing_previews",
        "orphans",
    )
    return {kind: sorted(report[kind]["items"]) for kind in kinds if report[kind]["count"]}


def _sharded(root: str, ident: str) -> str:
    return f"{root}/{ident[:2]}/{ident[2:4]}/{ident}"


def test_seeded_defects_are_reported_repaired_and_orphans_bounded(
    env: dict[str, str], s3w: Run, media_root: Path, s3: Any, bucket: str
) -> None:
    db = env["db"]
    user = pm.insert_user(db)
    docs = [pm.insert_document(db, user, preview_status="ready") for _ in range(4)]
    for doc in docs:
        pm.media_file(media_root, doc.version, pdf_bytes())
        s3.put_object(Bucket=bucket, Key=pm.thumbnail_key(doc.id), Body=b"\xff\xd8thumb")
        for page in doc.version.page_ids:
            for size in SIZES:
                s3.put_object(Bucket=bucket, Key=pm.page_preview_key(page, size), Body=b"\xff\xd8p")
            s3.put_object(
                Bucket=bucket, Key=f"{_sharded('ocr/pages', str(page))}/page.txt", Body=b"t"
            )
    s3w("sync", str(media_root), "--json", "--no-progress")
    clean = _audit(s3w, code=0)
    assert clean["ok"] is True
    assert (clean["versions"], clean["documents_ready"], clean["pages_checked"]) == (4, 4, 4)

    # The defects: a version object gone, a version file gone from disk, a ready document's
    # thumbnail gone, and three objects no row owns.
    lost_object = pm.docver_key(docs[0].version.id, "document.pdf")
    s3.delete_object(Bucket=bucket, Key=lost_object)
    lost_file = pm.docver_key(docs[1].version.id, "document.pdf")
    original = (media_root / lost_file).read_bytes()
    (media_root / lost_file).unlink()
    s3.delete_object(Bucket=bucket, Key=pm.thumbnail_key(docs[2].id))
    orphans = sorted(
        [
            f"{_sharded('docvers', str(uuid.uuid4()))}/gone.pdf",
            f"{_sharded('thumbnails/jpg', str(uuid.uuid4()))}/sm.jpg",
            f"{_sharded('ocr/pages', str(uuid.uuid4()))}/page.txt",
        ]
    )
    for key in orphans:
        s3.put_object(Bucket=bucket, Key=key, Body=b"orphan bytes")

    report = _audit(s3w, code=1)
    assert _found(report) == {
        "missing_in_bucket": [lost_object],
        "missing_on_disk": [lost_file],
        "missing_thumbnails": [str(docs[2].id)],
        "orphans": orphans,
    }
    assert report["orphans"]["bytes"] == 3 * len(b"orphan bytes")

    refused = s3w("audit", "--delete-orphans", "--max-delete", "2", "--no-progress", code=1)
    assert "not deleted: 3 orphans, more than --max-delete 2" in refused.stderr
    for key in orphans:
        s3.head_object(Bucket=bucket, Key=key)  # still there

    repaired = _audit(s3w, "--repair", code=1)  # the orphans remain
    assert (repaired["uploaded"], repaired["restored"], repaired["thumbnails_requested"]) == (
        1,
        1,
        1,
    )
    assert (
        s3.get_object(Bucket=bucket, Key=lost_object)["Body"].read()
        == (media_root / lost_object).read_bytes()
    )
    assert (media_root / lost_file).read_bytes() == original
    # As the core would: the status back to NULL and the thumbnail task sent by name.
    assert pm.document_row(db, docs[2].id)["preview_status"] is None
    sent = _messages(env["broker"], env["queue"])
    assert sent == [
        {
            "task": "s3_worker_generate_doc_thumbnail",
            "kwargs": {"doc_id": str(docs[2].id)},
        }
    ]
    # What a worker does with that message (the same operation, run here in-process).
    s3w("doc-thumbnail", sent[0]["kwargs"]["doc_id"])

    after = _audit(s3w, code=1)
    assert _found(after) == {"orphans": orphans}
    assert after["defects"] == 0

    deleted = _audit(s3w, "--delete-orphans", "--max-delete", "3", code=1)
    assert deleted["deleted"] == 3
    assert _audit(s3w, code=0)["ok"] is True


def test_checksum_catches_an_object_overwritten_with_the_same_size(
    env: dict[str, str], s3w: Run, media_root: Path, s3: Any, bucket: str
) -> None:
    db = env["db"]
    user = pm.insert_user(db)
    doc = pm.insert_document(db, user, preview_status=None)
    pm.media_file(media_root, doc.version, pdf_bytes())
    s3w("sync", str(media_root), "--json", "--no-progress")
    key = pm.docver_key(doc.version.id, "document.pdf")
    size = (media_root / key).stat().st_size
    s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))

    assert _audit(s3w, code=0)["ok"] is True  # sizes agree
    report = _audit(s3w, "--checksum", code=1)
    assert _found(report) == {"different": [f"{key} (same size, other content)"]}


def test_checksum_compares_multipart_objects_by_their_parts(
    env: dict[str, str],
    s3w: Run,
    media_root: Path,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A multipart object keeps no whole-content MD5: the audit recomputes its ETag (the MD5
    of the parts' MD5s) from the file, and catches other bytes of the same size."""
    from boto3.s3.transfer import TransferConfig

    part = 5 * 1024 * 1024
    monkeypatch.setenv("PM_S3_MULTIPART_THRESHOLD", str(part))
    monkeypatch.setenv("PM_S3_MULTIPART_CHUNKSIZE", str(part))
    db = env["db"]
    user = pm.insert_user(db)
    doc = pm.insert_document(db, user, preview_status=None)
    data = os.urandom(2 * part + 1000)
    pm.media_file(media_root, doc.version, data)
    s3w("sync", str(media_root), "--json", "--no-progress")
    key = pm.docver_key(doc.version.id, "document.pdf")
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].endswith('-3"')
    assert "s3w-md5" not in head["Metadata"]
    assert _audit(s3w, "--checksum", code=0)["ok"] is True

    other = media_root.parent / "other.bin"
    other.write_bytes(os.urandom(len(data)))
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part)
    s3.upload_file(str(other), bucket, key, Config=config)
    assert s3.head_object(Bucket=bucket, Key=key)["ETag"].endswith('-3"')
    report = _audit(s3w, "--checksum", code=1)
    assert _found(report) == {"different": [f"{key} (same size, other content)"]}

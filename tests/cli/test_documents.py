"""Database-backed commands and ``s3w doctor`` against real PostgreSQL, Redis and S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm

Run = Callable[..., Any]


def pdf_bytes(pages: int = 1) -> bytes:
    from fpdf import FPDF

    doc = FPDF(format="A4")
    doc.set_font("helvetica", size=24)
    for number in range(1, pages + 1):
        doc.add_page()
        doc.cell(text=f"s3w cli page {number}")
    return bytes(doc.output())


@pytest.fixture
def papermerge_env(
    storage_env: dict[str, str],
    pg_url: str,
    media_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """S3, a Papermerge database and a media root in the environment; returns the DB URL."""
    pm.create_schema(pg_url)
    monkeypatch.setenv("PM_DB_URL", pg_url)
    monkeypatch.setenv("PM_MEDIA_ROOT", str(media_root))
    return pg_url


def test_add_and_remove_doc_vers(
    s3w: Run, papermerge_env: str, media_root: Path, s3: Any, bucket: str
) -> None:
    user = pm.insert_user(papermerge_env)
    doc = pm.insert_document(papermerge_env, user, preview_status="ready")
    key = pm.docver_key(doc.version.id, "document.pdf")
    pm.media_file(media_root, doc.version, pdf_bytes())

    summary = json.loads(s3w("add-doc-vers", str(doc.version.id), "--json").stdout)
    assert summary["uploaded"] == 1
    assert s3.head_object(Bucket=bucket, Key=key)["ContentType"] == "application/pdf"
    assert pm.document_row(papermerge_env, doc.id)["preview_status"] is None  # regenerate

    unknown = s3w("add-doc-vers", "8a1f3c52-8c3e-4a55-9d1e-3f4b1f1c7a10", code=1)
    assert "no document version with id" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    s3w("remove-doc-vers", str(doc.version.id))
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0

    bad = s3w("remove-doc-vers", "not-a-uuid", code=1)
    assert "not-a-uuid" in bad.stderr


def test_thumbnails_one_and_all(
    s3w: Run, papermerge_env: str, media_root: Path, s3: Any, bucket: str
) -> None:
    user = pm.insert_user(papermerge_env)
    docs = [pm.insert_document(papermerge_env, user) for _ in range(3)]
    for doc in docs:
        pm.media_file(media_root, doc.version, pdf_bytes())

    assert s3w("doc-thumbnail", str(docs[0].id)).stdout.strip() == f"{docs[0].id}: ready"
    thumb = s3.get_object(Bucket=bucket, Key=pm.thumbnail_key(docs[0].id))
    assert thumb["ContentType"] == "image/jpeg"
    assert thumb["Body"].read()[:2] == b"\xff\xd8"

    summary = json.loads(s3w("generate-doc-thumbnails", "--jobs", "2", "--json").stdout)
    assert summary == {"documents": 2, "statuses": {"ready": 2}, "failures": []}
    for doc in docs:
        assert pm.document_row(papermerge_env, doc.id)["preview_status"] == "ready"
        s3.head_object(Bucket=bucket, Key=pm.thumbnail_key(doc.id))
    assert "nothing to do" in s3w("generate-doc-thumbnails", "--progress").stdout

    broken = pm.insert_document(papermerge_env, user)
    pm.media_file(media_root, broken.version, b"%PDF-1.4 this is not a PDF")
    failed = s3w("generate-doc-thumbnails", code=1)
    assert f"failed: {broken.id}" in failed.stderr
    assert pm.document_row(papermerge_env, broken.id)["preview_status"] == "failed"


def test_doctor_all_ok_then_one_failing(
    s3w: Run,
    papermerge_env: str,
    redis_server_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PM_REDIS_URL", f"{redis_server_url}/14")
    checks = json.loads(s3w("doctor", "--json").stdout)
    assert [c["check"] for c in checks] == [
        "s3",
        "versioning",
        "lock",
        "database",
        "broker",
        "pdftoppm",
        "media root",
    ]
    assert all(c["ok"] for c in checks), checks

    from s3w_tasks.settings import get_settings

    monkeypatch.setenv("PM_REDIS_URL", "redis://:hunter2pass@127.0.0.1:9/0")
    monkeypatch.setenv("S3W_TEST_DB_PASSWORD", "hunter2pass")  # checked absent from output
    get_settings.cache_clear()
    result = s3w("doctor", code=1)
    lines = result.stdout.splitlines()
    assert len(lines) == 7
    assert lines[4].startswith("FAIL  broker")
    assert "redis://:********@127.0.0.1:9/0" in lines[4]
    assert all(line.startswith("ok") for i, line in enumerate(lines) if i != 4)


def test_reprocess_uploads_lists_then_sends_and_refuses_a_wrong_status(
    s3w: Run,
    papermerge_env: str,
    redis_server_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uuid

    import redis

    broker = f"{redis_server_url.rstrip('/')}/5"
    queue = f"ru-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PM_REDIS_URL", broker)
    monkeypatch.setenv("PM_S3_QUEUE_NAME", queue)
    user = pm.insert_user(papermerge_env)
    doc = pm.insert_document(papermerge_env, user, page_count=0, processing_status="uploaded")
    pm.execute(
        papermerge_env,
        "UPDATE document_versions SET created_at = now() - interval '3 hours' "
        "WHERE document_id = %s",
        (str(doc.id),),
    )

    listed = s3w("reprocess-uploads", "--older-than", "120", "--dry-run").stdout
    assert "1 document(s) unprocessed for over 120 min (uploaded 1): would send" in listed
    assert f"  {doc.id}" in listed.splitlines()
    later = s3w("reprocess-uploads", "--older-than", "240").stdout
    assert later.strip() == "no document left unprocessed for over 240 min"

    client = redis.Redis.from_url(broker)
    try:
        assert client.llen(queue) == 0
        sent = json.loads(s3w("reprocess-uploads", "--json").stdout)
        assert (sent["found"], sent["sent"], sent["documents"]) == (1, 1, [str(doc.id)])
        assert client.llen(queue) == 1
    finally:
        client.delete(queue)
        client.close()

    wrong = s3w("reprocess-uploads", "--status", "ready", code=1)
    assert wrong.stderr.strip() == (
        "error: --status 'ready' is not a state processing can be left in; "
        "use one of uploaded, converting, processing_pages"
    )

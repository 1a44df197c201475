"""Backfill enqueueing (``generate-doc-thumbnails --distributed``, ``generate-page-previews``):
the right ids by the status rules, in bounded rounds, as the contract's messages."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm

REDIS_DB = 6  # this module's Redis database


@pytest.fixture
def env(
    pg_url: str, storage_env: dict[str, str], redis_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    pm.create_schema(pg_url)
    queue = f"bf-{uuid.uuid4().hex[:8]}"
    broker = f"{redis_server_url.rstrip('/')}/{REDIS_DB}"
    monkeypatch.setenv("PM_DB_URL", pg_url)
    monkeypatch.setenv("PM_REDIS_URL", broker)
    monkeypatch.setenv("PM_S3_PREVIEW_QUEUE_NAME", queue)
    return broker


def _messages(broker: str, queue: str) -> list[dict[str, Any]]:
    """The queued messages (task name, kwargs), oldest first, as a worker would read them."""
    import redis

    client = redis.Redis.from_url(broker)
    try:
        raw = client.lrange(queue, 0, -1)
        client.delete(queue)
    finally:
        client.close()
    found = []
    for item in reversed(raw):  # kombu LPUSHes and consumers BRPOP
        message = json.loads(item)
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append({"task": message["headers"]["task"], "kwargs": kwargs})
    return found


def test_thumbnails_for_missing_or_failed_ready_documents(env: str, pg_url: str) -> None:
    from s3w_tasks.contract import preview_queue
    from s3w_tasks.fleet import backfill

    user = pm.insert_user(pg_url)
    want = {str(pm.insert_document(pg_url, user).id) for _ in range(5)}
    want.add(str(pm.insert_document(pg_url, user, preview_status="failed").id))
    pm.insert_document(pg_url, user, preview_status="ready")
    pm.insert_document(pg_url, user, processing_status="processing_pages")

    seen = []
    done = backfill.enqueue(
        "thumbnails",
        backfill.thumbnail_batches(batch=4),
        on_progress=lambda p: seen.append(p.enqueued),
    )

    messages = _messages(env, preview_queue())
    assert {m["task"] for m in messages} == {"s3_worker_generate_doc_thumbnail"}
    assert sorted(m["kwargs"]["doc_id"] for m in messages) == sorted(want)
    assert (done.enqueued, done.tasks) == (6, 6)
    assert seen == [4, 6]  # two rounds of at most 4


def test_page_previews_for_pages_missing_a_size(
    env: str, pg_url: str, s3: Any, bucket: str, media_root: Path
) -> None:
    from s3w_storage.objects import get_storage
    from s3w_tasks.contract import preview_queue
    from s3w_tasks.fleet import backfill

    user = pm.insert_user(pg_url)
    doc = pm.insert_document(pg_url, user, page_count=3)
    complete, partial, missing = (str(p) for p in doc.version.page_ids)
    for size in ("sm", "md", "lg", "xl"):
        s3.put_object(Bucket=bucket, Key=pm.page_preview_key(complete, size), Body=b"j")
    s3.put_object(Bucket=bucket, Key=pm.page_preview_key(partial, "sm"), Body=b"j")
    pm.insert_document(pg_url, user, page_count=2, processing_status="failed")

    done = backfill.enqueue(
        "page previews", backfill.pages_needing_previews(get_storage(), batch=10), per_task=4
    )

    messages = _messages(env, preview_queue())
    assert [m["task"] for m in messages] == ["s3_worker_generate_page_image"]
    assert sorted(messages[0]["kwargs"]["page_ids"]) == sorted([partial, missing])
    assert (done.enqueued, done.tasks) == (2, 1)


def _age(db_url: str, *docs: pm.Doc, hours: int = 2) -> None:
    """Make the documents' versions look uploaded ``hours`` ago."""
    pm.execute(
        db_url,
        "UPDATE document_versions SET created_at = now() - make_interval(hours => %s) "
        "WHERE document_id = ANY(%s::uuid[])",
        (hours, [str(d.id) for d in docs]),
    )


def test_uploads_left_unprocessed_are_sent_again_as_the_core_sends_them(
    env: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3w_tasks.fleet.backfill import reprocess_uploads
    from s3w_tasks.models import ProcessingStatus

    queue = f"ru-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PM_S3_QUEUE_NAME", queue)
    user = pm.insert_user(pg_url)
    stuck = {
        status: pm.insert_document(pg_url, user, page_count=0, processing_status=status)
        for status in ("uploaded", "converting", "processing_pages")
    }
    # A conversion that died after creating version 2: the core's message named version 1.
    pm.add_version(pg_url, stuck["converting"], file_name="document.pdf.pdf")
    recent = pm.insert_document(pg_url, user, page_count=0, processing_status="uploaded")
    finished = [
        pm.insert_document(pg_url, user, processing_status=status) for status in ("ready", "failed")
    ]
    _age(pg_url, *stuck.values(), *finished)

    plan = reprocess_uploads(3600, dry_run=True)
    assert (plan.found, plan.sent) == (3, 0)
    assert plan.statuses == {"uploaded": 1, "converting": 1, "processing_pages": 1}
    assert _messages(env, queue) == []

    only = reprocess_uploads(3600, statuses=(ProcessingStatus.UPLOADED,))
    assert (only.found, only.sent, only.documents) == (1, 1, [str(stuck["uploaded"].id)])
    doc = stuck["uploaded"]
    assert _messages(env, queue) == [
        {
            "task": "process_upload",
            "kwargs": {
                "document_id": str(doc.id),
                "document_version_id": str(doc.version.id),
                "lang": "deu",
                "user_id": str(user),
            },
        }
    ]

    everything = reprocess_uploads(3600)
    assert (everything.found, everything.sent) == (3, 3)
    sent = {m["kwargs"]["document_id"]: m["kwargs"] for m in _messages(env, queue)}
    assert set(sent) == {str(d.id) for d in stuck.values()}
    converting = stuck["converting"]
    assert sent[str(converting.id)]["document_version_id"] == str(converting.versions[0].id)
    assert str(recent.id) not in sent

"""Faults a deployment meets: S3 going away, workers killed mid-task, a task that kills its
worker every time. This module runs its own SeaweedFS so it can stop and restart it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.services import SeaweedS3, running_seaweedfs, wait_until
from tests.tasks.conftest import Stack, pdf_bytes

REDIS_DB = 14
PREFIX = f"f{uuid.uuid4().hex[:8]}"
FAST_FAILING_S3 = {
    # Fail fast while S3 is down, so the worker's own retries (not boto3's) carry the outage.
    "PM_S3_MAX_ATTEMPTS": "2",
    "PM_S3_CONNECT_TIMEOUT": "2",
    "PM_S3_READ_TIMEOUT": "10",
    "S3W_TASK_MAX_RETRIES": "40",
}


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with running_seaweedfs(tmp_path_factory.mktemp("fault-weed"), "fault") as server:
        yield server


@pytest.fixture(scope="module")
def weed_s3(weed: SeaweedS3) -> Any:
    from tests.conftest import S3Service

    return S3Service(weed.endpoint, weed.access_key, weed.secret_key)


@pytest.fixture(scope="module")
def weed_bucket(weed_s3: Any) -> str:
    name = f"f-{uuid.uuid4().hex[:20]}"
    weed_s3.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def stack(stack_factory: Any, weed_s3: Any, weed_bucket: str) -> Stack:
    return stack_factory(
        redis_db=REDIS_DB,
        prefix=PREFIX,
        s3=weed_s3,
        bucket=weed_bucket,
        extra_env={**FAST_FAILING_S3, "S3W_TASK_MAX_RETRIES": "40"},
        concurrency=2,
    )


def _versions(stack: Stack, user: uuid.UUID, count: int, size: int = 20_000) -> list[pm.Version]:
    made = []
    for i in range(count):
        doc = pm.insert_document(stack.db_url, user, file_name=f"v{i}.pdf")
        pm.media_file(stack.media_root, doc.version, bytes([i % 256]) * size)
        made.append(doc.version)
    return made


def test_s3_outage_during_100_add_doc_vers(stack: Stack, weed: SeaweedS3, user: uuid.UUID) -> None:
    assert stack.worker is not None
    versions = _versions(stack, user, 100)
    retries_before = stack.worker.log().count("outcome=retry")
    task_ids = [stack.send("s3_worker_add_doc_vers", doc_ver_ids=[str(v.id)]) for v in versions]
    # Some go through, then S3 goes away for 15 s while the rest keep arriving.
    stack.worker.wait_for(r"s3_worker_add_doc_vers id=\S+ .*outcome=ok", timeout=60)
    weed.stop(remove=False)
    down_since = time.monotonic()
    wait_until(
        lambda: (
            time.monotonic() - down_since >= 15
            and stack.worker is not None
            and stack.worker.log().count("outcome=retry") - retries_before >= 20
        ),
        timeout=120,
        what="15 s of outage with retries logged",
        interval=0.5,
    )
    weed.start()
    outcomes = stack.worker.wait_for_outcomes(task_ids, timeout=240)
    assert set(outcomes.values()) == {"ok"}, outcomes
    for i, version in enumerate(versions):
        body, ctype = stack.get(stack.key(pm.docver_key(version.id, f"v{i}.pdf")))
        assert (len(body), body[:1], ctype) == (20_000, bytes([i % 256]), "application/pdf")
    assert stack.worker.alive()


def _slow_page_task(stack: Stack, user: uuid.UUID, pages: int = 40) -> tuple[pm.Doc, str]:
    doc = pm.insert_document(stack.db_url, user, file_name="long.pdf", page_count=pages)
    pm.media_file(stack.media_root, doc.version, pdf_bytes(pages))
    task_id = stack.send(
        "s3_worker_generate_page_image", page_ids=[str(p) for p in doc.version.page_ids]
    )
    return doc, task_id


def _first_preview_uploaded(stack: Stack, doc: pm.Doc) -> bool:
    return stack.head(stack.key(pm.page_preview_key(doc.version.page_ids[0], "xl"))) is not None


def _all_previews(stack: Stack, doc: pm.Doc) -> list[str]:
    missing = []
    for page in doc.version.page_ids:
        for size in ("sm", "md", "lg", "xl"):
            key = stack.key(pm.page_preview_key(page, size))
            if stack.head(key) is None:
                missing.append(key)
    return missing


def test_pool_process_killed_mid_task_is_redelivered(stack: Stack, user: uuid.UUID) -> None:
    worker = stack.worker
    assert worker is not None
    doc, task_id = _slow_page_task(stack, user)
    wait_until(lambda: _first_preview_uploaded(stack, doc), timeout=60, what="first preview")
    import os
    import signal

    killed = worker.pool_pids()
    assert killed, "no pool processes found"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    assert worker.wait_for_outcome(task_id, timeout=120) == "ok"
    assert "WorkerLostError" in worker.log() or "retry" in worker.log()
    assert _all_previews(stack, doc) == []
    assert worker.alive()


def test_whole_worker_killed_mid_task_is_redelivered(
    stack_factory: Any, weed_s3: Any, weed_bucket: str, user: uuid.UUID
) -> None:
    tag = uuid.uuid4().hex[:8]
    own = stack_factory(
        redis_db=REDIS_DB,
        prefix=PREFIX,
        s3=weed_s3,
        bucket=weed_bucket,
        extra_env={
            **FAST_FAILING_S3,
            # Another queue pair, and a short visibility timeout for the restore to happen
            # within the test (its tasks are short).
            "PM_S3_QUEUE_NAME": f"kill-{tag}",
            "PM_S3_PREVIEW_QUEUE_NAME": f"killpreview-{tag}",
            "S3W_VISIBILITY_TIMEOUT": "10",
        },
        concurrency=1,
    )
    first = own.worker
    doc, task_id = _slow_page_task(own, user)
    wait_until(lambda: _first_preview_uploaded(own, doc), timeout=60, what="first preview")
    first.kill()
    assert not first.alive()
    second = own.start_worker(concurrency=1)
    assert second.wait_for_outcome(task_id, timeout=120) == "ok"
    assert _all_previews(own, doc) == []


def test_task_that_keeps_killing_its_worker_ends_failed(
    stack_factory: Any, weed_s3: Any, weed_bucket: str, user: uuid.UUID, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    own = stack_factory(
        redis_db=REDIS_DB,
        prefix=PREFIX,
        s3=weed_s3,
        bucket=weed_bucket,
        extra_env={
            "PM_S3_QUEUE_NAME": f"crash-{tag}",
            "PM_S3_PREVIEW_QUEUE_NAME": f"crashpreview-{tag}",
            "S3W_TASK_MAX_RETRIES": "2",
        },
        concurrency=1,
        include=["tests.tasks.crashing_tasks"],
    )
    assert own.worker is not None
    doc = pm.insert_document(own.db_url, user, file_name="killer.pdf")
    attempts = tmp_path / "attempts.txt"
    result = own.sender.send_task(
        "s3w_test_crash_worker",
        kwargs={"doc_id": str(doc.id), "attempts_file": str(attempts)},
        queue=own.queue_names["s3"],
    )
    assert own.worker.wait_for_outcome(str(result.id), timeout=120) == "failed"
    assert attempts.read_text().split() == ["0", "1", "2"]  # first run + 2 retries, no more
    row = pm.document_row(own.db_url, doc.id)
    assert row["preview_status"] == "failed", row
    assert "died" in (row["preview_error"] or ""), row
    # The worker is still there and still works.
    assert own.worker.alive()
    pm.media_file(own.media_root, doc.version, pdf_bytes(1))
    assert own.run("s3_worker_add_doc_vers", doc_ver_ids=[str(doc.version.id)]) == "ok"

"""``s3w status`` against real Redis, PostgreSQL, S3 and a running worker, as text and JSON;
and ``--watch`` redrawing until interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.cli.test_documents import pdf_bytes
from tests.support import papermerge as pm
from tests.support.celery_worker import ROOT, start_worker
from tests.support.services import find_binary, wait_until

Run = Callable[..., Any]
REDIS_DB = 4  # this module's Redis database; its queue names are unique as well
THUMBNAIL = "s3_worker_generate_doc_thumbnail"


@pytest.fixture
def deployment(
    storage_env: dict[str, str],
    pg_url: str,
    media_root: Path,
    redis_server_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """A Papermerge database, a bucket, a media root and a Redis broker, in the environment
    of this process (for ``s3w``) and in the returned dict (for the worker)."""
    pm.create_schema(pg_url)
    env = {
        **storage_env,
        "PM_DB_URL": pg_url,
        "PM_MEDIA_ROOT": str(media_root),
        "PM_REDIS_URL": f"{redis_server_url.rstrip('/')}/{REDIS_DB}",
        "PM_PREFIX": f"st{uuid.uuid4().hex[:8]}",
        "PM_LOG_CONFIG": str(tmp_path / "none.yaml"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.mark.slow  # a worker, or seconds of redraws: full leg only
def test_status_text_and_json_with_a_running_worker(
    s3w: Run, deployment: dict[str, str], media_root: Path, tmp_path: Path
) -> None:
    import redis

    prefix = deployment["PM_PREFIX"]
    db = deployment["PM_DB_URL"]
    user = pm.insert_user(db)
    docs = [pm.insert_document(db, user, file_name=f"s{i}.pdf") for i in range(2)]
    for doc in docs:
        pm.media_file(media_root, doc.version, pdf_bytes())
    stuck = pm.insert_document(db, user, processing_status="uploaded")
    pm.execute(
        db,
        "UPDATE document_versions SET created_at = now() - interval '2 hours' "
        "WHERE document_id = %s",
        (str(stuck.id),),
    )
    synced = json.loads(s3w("sync", "--json", "--no-progress").stdout)
    assert synced["uploaded"] == 2

    # The worker consumes the preview queue only; three messages wait on the s3 queue.
    worker = start_worker(deployment, queues=[f"{prefix}_s3preview"], concurrency=1)
    sender = pm.core_app(deployment["PM_REDIS_URL"])
    try:
        ids = [
            sender.send_task(
                THUMBNAIL, kwargs={"doc_id": str(d.id)}, queue=f"{prefix}_s3preview"
            ).id
            for d in docs
        ]
        ids.append(
            sender.send_task(
                THUMBNAIL, kwargs={"doc_id": str(uuid.uuid4())}, queue=f"{prefix}_s3preview"
            ).id
        )
        for _ in range(3):
            sender.send_task(
                "s3_worker_add_doc_vers", kwargs={"doc_ver_ids": []}, queue=f"{prefix}_s3"
            )
        outcomes = worker.wait_for_outcomes([str(i) for i in ids], timeout=90)
        assert sorted(outcomes.values()) == ["failed", "ok", "ok"]

        def flushed() -> bool:  # workers write their tallies every few seconds
            report = json.loads(s3w("status", "--json").stdout)
            return (
                report["tasks"]["last_hour"]["ok"] == 2
                and report["tasks"]["last_hour"]["failed"] == 1
            )

        wait_until(flushed, timeout=30, what="the task statistics in Redis", interval=0.5)
        report = json.loads(s3w("status", "--json").stdout)
        text = s3w("status").stdout
    finally:
        worker.stop()
        sender.close()

    client = redis.Redis.from_url(deployment["PM_REDIS_URL"])
    try:
        waiting = client.llen(f"{prefix}_s3")
        client.delete(f"{prefix}_s3")
    finally:
        client.close()
    assert waiting == 3
    assert report["deployment"] == f"{prefix}_s3"
    assert report["workers"] == [{"name": worker.hostname, "queues": [f"{prefix}_s3preview"]}]
    assert report["queues"] == {f"{prefix}_s3": 3, f"{prefix}_s3preview": 0}
    assert report["tasks"] == {
        "per_minute": 0.6,
        "last_hour": {"ok": 2, "retried": 0, "failed": 1, "rejected": 0},
    }
    assert report["documents"] == {
        "preview_status": {"ready": 2, "none": 1},
        "processing_status": {"ready": 2, "uploaded": 1},
    }
    assert report["stuck_uploads"] == {
        "older_than_minutes": 30.0,
        "count": 1,
        "at_least": False,
        "documents": [{"document_id": str(stuck.id), "status": "uploaded"}],
    }
    last = report["last_runs"]["sync"]
    assert (last["ok"], last["items"]["uploaded"], last["bytes"]["uploaded"]) == (
        True,
        2,
        synced["uploaded_bytes"],
    )
    assert report["last_runs"]["migrate"] is None
    assert report["problems"] == []

    lines = text.splitlines()
    assert "workers      1 online" in lines
    assert f"  {worker.hostname}  queues {prefix}_s3preview" in lines
    assert f"queues       {prefix}_s3 3 waiting, {prefix}_s3preview 0 waiting" in lines
    assert "tasks        0.6 per minute (last 5 minutes)" in lines
    assert "  last hour  ok 2, failed 1, retried 0, rejected 0" in lines
    assert "  preview     none 1, ready 2" in lines
    assert "  processing  ready 2, uploaded 1" in lines
    assert any(
        line.startswith("stuck        1 uploads unprocessed for more than 30 minutes")
        for line in lines
    )
    assert f"  {stuck.id}  uploaded" in lines
    assert any(line.startswith("last sync    ok at ") for line in lines), lines

    # The worker gone: nobody answers, which is a state, not an error.
    after = s3w("status")
    assert "workers      NONE ONLINE" in after.stdout.splitlines()


def test_status_names_the_source_that_does_not_answer(
    s3w: Run, deployment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3w_tasks.settings import get_settings

    monkeypatch.setenv("PM_REDIS_URL", "redis://:hunter2pass@127.0.0.1:9/0")
    monkeypatch.setenv("S3W_TEST_DB_PASSWORD", "hunter2pass")  # checked absent from output
    get_settings.cache_clear()
    result = s3w("status", "--timeout", "0.5", code=1)
    lines = result.stdout.splitlines()
    assert "workers      unknown (broker did not answer)" in lines
    problems = [line for line in lines if line.startswith("problem")]
    assert [p.split(":")[0] for p in problems] == [
        "problem      broker",
        "problem      redis (task statistics, last runs)",
    ], problems
    assert any(line.startswith("  preview") for line in lines)  # the database still answered
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow  # a worker, or seconds of redraws: full leg only
def test_watch_redraws_until_interrupted(deployment: dict[str, str]) -> None:
    import threading

    env = {**os.environ, **deployment}
    proc = subprocess.Popen(
        [find_binary("s3w"), "status", "--watch", "--interval", "0.5", "--timeout", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.decode() for line in iter(proc.stdout.readline, b"")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        wait_until(
            lambda: sum(line.startswith("s3w status  ") for line in lines) >= 2,
            timeout=60,
            what="two screens",
            interval=0.2,
        )
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        err = proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()

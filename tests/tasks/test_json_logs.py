"""``PM_LOG_FORMAT=json``: a real worker's log is one JSON object per line, and a task's
outcome line carries its name, id, document id, outcome, duration and error."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.tasks.conftest import Stack, pdf_bytes

REDIS_DB = 10  # shared with test_metrics; the queue names are unique to this module
PREFIX = f"j{uuid.uuid4().hex[:8]}"
THUMBNAIL = "s3_worker_generate_doc_thumbnail"


@pytest.fixture(scope="module")
def stack(stack_factory: Any) -> Stack:
    return stack_factory(
        redis_db=REDIS_DB,
        prefix=PREFIX,
        concurrency=1,
        quiet=True,
        extra_env={
            "PM_LOG_FORMAT": "json",
            "S3W_NOT_READY_RETRY_DELAY": "0.2",
            "S3W_TASK_MAX_RETRIES": "1",
            # Celery warns that it runs as root (CI does) before logging is set up; that
            # warning is no log record, and only it is silenced here.
            "PYTHONWARNINGS": "ignore::UserWarning",
        },
    )


def records(log: str) -> list[dict[str, Any]]:
    parsed = []
    for number, line in enumerate(log.splitlines(), 1):
        if not line.strip():
            continue
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"line {number} of the worker's log is not JSON: {line[:300]!r}")
    return parsed


@pytest.mark.slow  # a worker of its own: runs on the full leg only
def test_every_line_is_json_and_outcomes_are_fields(stack: Stack, user: uuid.UUID) -> None:
    doc = pm.insert_document(stack.db_url, user, file_name="j.pdf")
    pm.media_file(stack.media_root, doc.version, pdf_bytes(1))
    waiting = pm.insert_document(stack.db_url, user, processing_status="converting")
    missing = str(uuid.uuid4())
    ok = stack.send(THUMBNAIL, doc_id=str(doc.id))
    failed = stack.send(THUMBNAIL, doc_id=missing)
    retried = stack.send(THUMBNAIL, doc_id=str(waiting.id))
    assert stack.worker is not None
    outcomes = stack.worker.wait_for_outcomes([ok, failed, retried], timeout=90)
    assert outcomes == {ok: "ok", failed: "failed", retried: "failed"}

    found = records(stack.worker.log())
    assert {r["level"] for r in found} <= {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    assert all({"time", "level", "logger", "process", "message"} <= r.keys() for r in found)
    assert any("ready." in r["message"] for r in found)
    by_outcome = {
        (r["task_id"], r["outcome"]): r for r in found if "outcome" in r and "task_id" in r
    }
    done = by_outcome[(ok, "ok")]
    assert (done["task"], done["doc_id"], done["level"]) == (THUMBNAIL, str(doc.id), "INFO")
    assert isinstance(done["duration"], float)
    assert done["duration"] > 0
    assert "error" not in done
    gone = by_outcome[(failed, "failed")]
    assert (gone["doc_id"], gone["level"]) == (missing, "ERROR")
    assert f"no document with id {missing}" in gone["error"]
    again = by_outcome[(retried, "retry")]
    assert (again["attempt"], again["doc_id"]) == (1, str(waiting.id))
    assert "still converting" in again["error"]
    last = by_outcome[(retried, "failed")]
    assert "still converting" in last["error"]


def test_a_yaml_log_config_keeps_working_with_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The YAML config's handlers and levels stay; only their format becomes JSON."""
    import logging

    from s3w_tasks.logs import configure_logging

    out = tmp_path / "worker.log"
    config = tmp_path / "log_config.yaml"
    config.write_text(
        "version: 1\n"
        "handlers:\n"
        f"  file: {{class: logging.FileHandler, filename: '{out}'}}\n"
        "loggers:\n"
        "  s3w_tasks: {level: WARNING, handlers: [file], propagate: false}\n"
    )
    monkeypatch.setenv("PM_LOG_FORMAT", "json")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert configure_logging(str(config)) == str(config)
        logging.getLogger("s3w_tasks.tasks").info("below the configured level")
        logging.getLogger("s3w_tasks.tasks").warning("kept %s", "as json")
        for handler in logging.getLogger("s3w_tasks").handlers:
            handler.flush()
    finally:
        for handler in logging.getLogger("s3w_tasks").handlers:
            handler.close()
        logging.getLogger("s3w_tasks").handlers.clear()
        logging.getLogger("s3w_tasks").propagate = True
        logging.getLogger("s3w_tasks").setLevel(logging.NOTSET)
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["level"], r["message"]) for r in lines] == [("WARNING", "kept as json")]

"""A document version under object lock survives ``s3_worker_remove_doc_vers``: a real worker
records "retained until <date>" in its log and metrics, succeeds, and never retries."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.archive import sse_c_headers
from tests.support.services import free_ports, wait_until
from tests.tasks.conftest import Stack
from tests.tasks.test_metrics import scrape, value

REDIS_DB = 5  # this module's Redis database
PREFIX = f"r{uuid.uuid4().hex[:8]}"
KEY = base64.b64encode(bytes(range(100, 132))).decode()
SSE_C = sse_c_headers(KEY)


@pytest.fixture(scope="module")
def port() -> int:
    return free_ports(1)[0]


@pytest.fixture(scope="module")
def stack(
    stack_factory: Any, s3_service: Any, port: int, tmp_path_factory: pytest.TempPathFactory
) -> Stack:
    bucket = f"l-{uuid.uuid4().hex[:20]}"  # its locked versions outlive the test, as they must
    s3_service.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    metrics_dir: Path = tmp_path_factory.mktemp("metrics")
    return stack_factory(
        redis_db=REDIS_DB,
        prefix=PREFIX,
        bucket=bucket,
        extra_env={
            "PM_S3_OBJECT_LOCK_MODE": "COMPLIANCE",
            "PM_S3_RETENTION_DAYS": "1",
            "PM_S3_SSE_C_KEY": KEY,
            "S3W_METRICS_PORT": str(port),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        },
    )


def test_a_locked_version_survives_remove_doc_vers(stack: Stack, port: int) -> None:
    version = uuid.uuid4()
    locked = stack.key(pm.docver_key(version, "locked.pdf"))
    loose = stack.key(pm.docver_key(version, "loose.txt"))  # written before the lock was set
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    stack.s3.put_object(
        Bucket=stack.bucket,
        Key=locked,
        Body=b"%PDF locked",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=until,
        **SSE_C,
    )
    stack.s3.put_object(Bucket=stack.bucket, Key=loose, Body=b"loose", **SSE_C)

    for _ in range(2):  # a second delivery finds the same lock and records it again
        assert stack.run("s3_worker_remove_doc_vers", doc_ver_ids=[str(version)]) == "ok"
    kept = stack.s3.get_object(Bucket=stack.bucket, Key=locked, **SSE_C)
    assert kept["Body"].read() == b"%PDF locked"
    assert stack.keys(stack.key("docvers/")) == [locked]  # the unlocked object is gone

    assert stack.worker is not None
    log = stack.worker.log()
    lines = [line for line in log.splitlines() if "retained until" in line]
    assert len(lines) == 2, log[-3000:]
    assert all(until.date().isoformat() in line and "locked.pdf" in line for line in lines)
    assert "outcome=retry" not in log
    assert "outcome=failed" not in log
    assert KEY not in log

    def counted() -> bool:
        samples = scrape(port)
        name = "s3_worker_remove_doc_vers"
        return (
            value(samples, "s3w_task_runs_total", task=name, outcome="retained") == 2
            and value(samples, "s3w_task_runs_total", task=name, outcome="retried") == 0
        )

    wait_until(counted, timeout=30, what="two retained runs in the metrics")

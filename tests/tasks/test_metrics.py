"""The worker's Prometheus endpoint: a real worker (prefork, two pool processes) with
``S3W_METRICS_PORT`` runs a known mix of tasks, and a scrape shows exactly those counts.

The worker consumes only the preview queue, so messages sent to the s3 queue stay there:
the queue depth it reports must equal the list length in Redis.
"""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.services import free_ports, wait_until
from tests.tasks.conftest import Stack, pdf_bytes

REDIS_DB = 10
PREFIX = f"m{uuid.uuid4().hex[:8]}"
THUMBNAIL = "s3_worker_generate_doc_thumbnail"


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("metrics")


@pytest.fixture(scope="module")
def port() -> int:
    return free_ports(1)[0]


@pytest.fixture(scope="module")
def stack(stack_factory: Any, metrics_dir: Path, port: int) -> Stack:
    stale = metrics_dir / "counter_999999.db"
    stale.write_bytes(b"left by an earlier run")  # must be cleared when the worker starts
    return stack_factory(
        redis_db=REDIS_DB,
        prefix=PREFIX,
        concurrency=2,
        queues=[f"{PREFIX}_s3preview"],
        extra_env={
            "S3W_METRICS_PORT": str(port),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            # The retried task's second run comes 1.5 to 3 s after its first.
            "S3W_NOT_READY_RETRY_DELAY": "3",
        },
    )


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Sample (name, labels) -> value, parsed with prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.slow  # a worker of its own: runs on the full leg only
def test_scrape_counts_a_known_task_mix_across_both_pool_processes(
    stack: Stack, user: uuid.UUID, metrics_dir: Path, port: int
) -> None:
    worker = stack.worker
    assert worker is not None
    assert not (metrics_dir / "counter_999999.db").exists()
    before = scrape(port)
    assert value(before, "s3w_task_runs_total", task=THUMBNAIL, outcome="ok") == 0

    # Six documents that render, one that does not exist (fails at once), one still
    # processing (retried, then rendered once it is ready), one message of an unknown task.
    docs = []
    for i in range(6):
        doc = pm.insert_document(stack.db_url, user, file_name=f"m{i}.pdf")
        pm.media_file(stack.media_root, doc.version, pdf_bytes(1, f"metrics {i}"))
        docs.append(doc)
    # One version's file is in the bucket only: the worker downloads it (bytes down).
    remote = pdf_bytes(2, "in the bucket only")
    stack.put(stack.key(pm.docver_key(docs[0].version.id, "m0.pdf")), remote, "application/pdf")
    (stack.media_root / pm.docver_key(docs[0].version.id, "m0.pdf")).unlink()
    waiting = pm.insert_document(
        stack.db_url, user, file_name="later.pdf", processing_status="processing_pages"
    )
    pm.media_file(stack.media_root, waiting.version, pdf_bytes(1, "later"))
    ok_ids = [stack.send(THUMBNAIL, doc_id=str(d.id)) for d in docs]
    failed_id = stack.send(THUMBNAIL, doc_id=str(uuid.uuid4()))
    retried_id = stack.send(THUMBNAIL, doc_id=str(waiting.id))
    stack.sender.send_task("s3w_no_such_task", kwargs={}, queue=f"{PREFIX}_s3preview")
    worker.wait_for(rf"{THUMBNAIL} id={retried_id} .*outcome=retry", timeout=60)
    pm.execute(
        stack.db_url,
        "UPDATE documents SET processing_status = 'ready' WHERE node_id = %s",
        (str(waiting.id),),
    )
    outcomes = worker.wait_for_outcomes([*ok_ids, failed_id, retried_id], timeout=120)
    assert outcomes == {**dict.fromkeys(ok_ids, "ok"), failed_id: "failed", retried_id: "ok"}

    # Messages the worker does not consume: the reported depth is Redis's list length.
    queued = [
        stack.send("s3_worker_add_doc_vers", doc_ver_ids=[str(uuid.uuid4())]) for _ in range(5)
    ]
    import redis

    client = redis.Redis.from_url(stack.broker_url)
    depth_in_redis = client.llen(f"{PREFIX}_s3")
    client.close()

    def counted() -> bool:
        found = scrape(port)
        runs = [
            value(found, "s3w_task_runs_total", task=THUMBNAIL, outcome=o)
            for o in ("ok", "retried", "failed")
        ]
        return (
            sum(runs) >= 9
            and value(found, "s3w_task_runs_total", task="unknown", outcome="rejected") >= 1
        )

    wait_until(counted, timeout=30, what="the counts in a scrape", interval=0.3)
    samples = scrape(port)
    runs = {
        outcome: value(samples, "s3w_task_runs_total", task=THUMBNAIL, outcome=outcome)
        for outcome in ("ok", "retried", "failed")
    }
    assert runs == {"ok": 7, "retried": 1, "failed": 1}, runs
    assert value(samples, "s3w_task_runs_total", task="unknown", outcome="rejected") == 1
    assert value(samples, "s3w_task_duration_seconds_count", task=THUMBNAIL) == 9
    assert value(samples, "s3w_task_duration_seconds_sum", task=THUMBNAIL) > 0

    # Seven thumbnails rendered and uploaded (one PUT each), their bytes counted going up.
    renderer = next(
        dict(labels)["renderer"]
        for (name, labels) in samples
        if name == "s3w_render_seconds_count" and dict(labels).get("kind") == "pdf"
    )
    assert value(samples, "s3w_render_seconds_count", kind="pdf", renderer=renderer) == 7
    assert value(samples, "s3w_render_pixels_total") > 0
    assert value(samples, "s3w_s3_requests_total", operation="PutObject", status="200") == 7
    sizes = [
        stack.head(stack.key(pm.thumbnail_key(d.id)))["ContentLength"] for d in [*docs, waiting]
    ]
    assert value(samples, "s3w_s3_bytes_total", direction="up") == sum(sizes)
    s3 = sorted((n, sorted(labels), v) for (n, labels), v in samples.items() if "_s3_" in n)
    # One download below the part size: its HEAD, then one GET of the whole object.
    assert value(samples, "s3w_s3_requests_total", operation="HeadObject", status="200") == 1, s3
    assert value(samples, "s3w_s3_requests_total", operation="GetObject", status="200") == 1, s3
    assert value(samples, "s3w_s3_bytes_total", direction="down") == len(remote), s3

    # Both pool processes counted (each writes its own file), and the sum is the scrape above.
    pool = worker.pool_pids()
    assert len(pool) == 2, pool
    counted_by = {int(p.stem.rsplit("_", 1)[1]) for p in metrics_dir.glob("counter_*.db")}
    assert set(pool) <= counted_by, (pool, sorted(counted_by))

    assert len(queued) == depth_in_redis == 5
    assert value(samples, "s3w_queue_depth", queue=f"{PREFIX}_s3") == depth_in_redis
    assert value(samples, "s3w_queue_depth", queue=f"{PREFIX}_s3preview") == 0
    ready = pm._rows(
        stack.db_url, "SELECT count(*) AS n FROM documents WHERE preview_status = 'ready'", ()
    )
    assert value(samples, "s3w_documents", preview_status="ready") == ready[0]["n"] >= 7
    assert value(samples, "s3w_state_up", source="broker") == 1
    assert value(samples, "s3w_state_up", source="database") == 1
    assert value(samples, "process_resident_memory_bytes") > 0
    # The names dashboards and alerts are checked against are the names a scrape shows.
    from s3w_tasks.metrics import sample_names

    assert {name for name, _labels in samples} <= sample_names()


@pytest.mark.slow  # a worker of its own: runs on the full leg only
def test_metrics_listen_on_loopback_only_by_default(stack: Stack, port: int) -> None:
    import psutil

    assert stack.worker is not None
    main = psutil.Process(stack.worker.proc.pid)
    listening = [
        c.laddr
        for c in main.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]
    assert [a.ip for a in listening] == ["127.0.0.1"], listening

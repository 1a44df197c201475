"""The S3 server stops and comes back while the worker and ``s3w sync`` are writing to it.

Scenario: the worker has ``s3_worker_add_doc_vers`` tasks queued (100 at CI size, 500 at
full size) and an ``s3w sync`` of a separate media root (500 / 5,000 files) is running when
SeaweedFS is killed (SIGKILL) for 8 s / 20 s, then started again on the same ports and data. Expected:
every task ends ``ok`` (retried with backoff across the outage, none lost); the sync reports
the files it could not upload and exits 1, and a second ``s3w sync`` uploads those still
missing (a PUT whose answer was lost may have stored its object); every object is then in
the bucket with the local file's MD5 as its ETag.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.celery_worker import ROOT
from tests.support.results import record, size
from tests.support.servers import kill_seaweedfs
from tests.support.services import SeaweedS3, find_binary, wait_until
from tests.support.stack import Row, Stack, bulk_documents, md5

#: Fail each request fast while S3 is down, so the worker's own retries carry the outage.
FAST_FAILING_S3 = {
    "PM_S3_MAX_ATTEMPTS": "2",
    "PM_S3_CONNECT_TIMEOUT": "2",
    "PM_S3_READ_TIMEOUT": "10",
    "S3W_TASK_MAX_RETRIES": "40",
}


def sync_env(st: Stack, prefix: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PM_", "S3W_"))}
    env = {**keep, **st.env, "PM_PREFIX": prefix}
    return env


def start_sync(root: Path, env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as sink:
        return subprocess.Popen(
            [find_binary("s3w"), "sync", str(root), "--json", "--no-progress"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )


def sync_result(out: Path) -> dict[str, Any]:
    text = out.read_text()
    start = text.find("{")
    assert start >= 0, f"no JSON summary from s3w sync:\n{text[-2000:]}"
    return dict(json.loads(text[start:]))


@pytest.mark.timeout(1800)  # the full size takes minutes
def test_s3_outage_during_tasks_and_sync(
    make_stack: Callable[..., Stack], own_weed: SeaweedS3, own_weed_s3: Any, tmp_path: Path
) -> None:
    tasks, files, outage = size(100, 500), size(500, 5_000), size(8, 20)
    st = make_stack(s3=own_weed_s3, extra_env=FAST_FAILING_S3)
    user = pm.insert_user(st.db_url)
    rows = bulk_documents(st.db_url, user, [f"outage-{i}.pdf" for i in range(tasks)])
    expected: dict[str, str] = {}
    for i, row in enumerate(rows):
        data = os.urandom(20_000) + str(i).encode()
        st.write_media(row, data)
        expected[st.key(pm.docver_key(row.version_id, row.file_name))] = md5(data)
    # The sync's own media root and prefix: 64 KiB files spread over 50 folders.
    sync_root = tmp_path / "sync-media"
    sync_prefix = f"{st.prefix}-sync"
    for i in range(files):
        path = sync_root / f"docvers/{i % 50:02d}/{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(64 * 1024)
        path.write_bytes(data)
        expected[f"{sync_prefix}/docvers/{i % 50:02d}/{i:05d}.bin"] = md5(data)

    st.start_worker(concurrency=2)

    def send(row: Row) -> str:
        return st.send("s3_worker_add_doc_vers", doc_ver_ids=[str(row.version_id)])

    # Half the tasks are queued or running when S3 stops; the core sends the rest during
    # the outage. S3 stops as soon as the sync has stored its first object.
    half = len(rows) // 2
    task_ids = [send(r) for r in rows[:half]]
    first_out = tmp_path / "sync-1.json"
    sync = start_sync(sync_root, sync_env(st, sync_prefix), first_out)
    client = own_weed_s3.client()

    def sync_uploading() -> bool:
        listed = client.list_objects_v2(Bucket=st.bucket, Prefix=sync_prefix + "/", MaxKeys=5)
        return listed.get("KeyCount", 0) > 0 or sync.poll() is not None

    wait_until(sync_uploading, timeout=120, what="the sync's first uploads", interval=0.05)
    kill_seaweedfs(own_weed)
    down_since = time.monotonic()
    sync_running_at_stop = sync.poll() is None
    retries_before = st.retries()
    task_ids += [send(r) for r in rows[half:]]
    wait_until(
        lambda: time.monotonic() - down_since >= outage,
        timeout=outage + 30,
        what=f"{outage} s of outage",
        interval=0.25,
    )
    retries_during = st.retries() - retries_before
    own_weed.start()
    outcomes = st.wait_for_outcomes(task_ids, timeout=300)
    first_exit = sync.wait(timeout=600)
    first = sync_result(first_out)

    second_out = tmp_path / "sync-2.json"
    rerun = start_sync(sync_root, sync_env(st, sync_prefix), second_out)
    assert rerun.wait(timeout=600) == 0, second_out.read_text()[-2000:]
    second = sync_result(second_out)

    lost = [t for t, o in outcomes.items() if o != "ok"]
    listing = st.listing("")
    listing.update(
        {
            k: v
            for k, v in _listing(client, st.bucket, sync_prefix + "/").items()
            if k not in listing
        }
    )
    missing = [k for k in expected if k not in listing]
    differ = [k for k, d in expected.items() if k in listing and listing[k][1] != d]
    record(
        "S3 server stopped and restarted during tasks and sync",
        result=(
            f"{tasks - len(lost)}/{tasks} tasks ok (0 lost); sync run 1: "
            f"{first['uploaded']} uploaded, {len(first['failures'])} failed (exit {first_exit}); "
            f"run 2 uploaded {second['uploaded']} (the rest had landed), exit 0; {len(expected) - len(missing)}/"
            f"{len(expected)} objects byte-identical"
        ),
        figure=(
            f"outage {outage} s; {retries_during} task retries logged during it, "
            f"{st.retries()} in all; "
            f"sync running when S3 stopped: {sync_running_at_stop}"
        ),
        tasks=tasks,
        files=files,
        outage_s=outage,
        retries=st.retries(),
    )
    assert lost == [], st.failure_lines()[:5]
    assert (missing, differ) == ([], []), f"{len(missing)} missing, {len(differ)} differ"
    # A PUT whose answer was lost in the crash may have stored its object: such a file is
    # reported failed by the first run and found unchanged by the second.
    assert second["uploaded"] <= len(first["failures"]), (first["failures"][:3], second)
    assert second["failures"] == []
    assert first_exit == (1 if first["failures"] else 0)


def _listing(client: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = (obj["Size"], obj["ETag"].strip('"'))
    return found

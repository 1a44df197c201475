"""Forged task messages: whoever can write to the broker must not be able to delete objects.

Scenario (the attacker of docs/security.md): write access to the broker's Redis, which often
runs without a password on the operator's network, but not the operator's environment. One
message naming the distributed-sync shard task with ``phase="delete"``, ``within=""`` and
``options={"delete": true, "max_delete": 10**9}`` is sent to the queue Papermerge core uses,
addressed to a worker whose media root is empty. Before fleet tasks were signed that message
deleted every object under the worker's prefix.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.reliability.conftest import redis_db_url
from tests.reliability.results import record
from tests.reliability.stack import Stack, stack
from tests.support.services import wait_until

SHARD = "s3w_sync_shard"
OBJECTS = 5


@pytest.fixture
def fs(
    pg_server_url: str, s3_service: Any, redis_server_url: str, tmp_path: Any
) -> Iterator[Stack]:
    with stack(
        pg_server_url=pg_server_url,
        s3=s3_service,
        broker_url=redis_db_url(redis_server_url),
        tmp=tmp_path,
    ) as made:
        yield made


def _fill_bucket(fs: Stack) -> set[str]:
    client = fs.s3.client()
    keys = set()
    for n in range(OBJECTS):
        key = fs.key(f"docvers/{n:02x}/00/{uuid.uuid4()}/doc.pdf")
        client.put_object(Bucket=fs.bucket, Key=key, Body=b"%PDF-1.4 keep me")
        keys.add(key)
    return keys


def _forged(fs: Stack) -> dict[str, Any]:
    return {
        "run_id": uuid.uuid4().hex,
        "within": "",
        "folders": [""],
        "bucket": fs.bucket,
        "prefix": fs.prefix,
        "options": {"delete": True, "max_delete": 10**9},
        "phase": "delete",
    }


def _drained(fs: Stack, queue: str) -> Any:
    import redis

    client = redis.Redis.from_url(fs.broker_url)

    def idle() -> bool:
        return client.llen(queue) == 0 and client.hlen("unacked") == 0

    return idle


def test_forged_delete_on_the_papermerge_queue_deletes_nothing(fs: Stack) -> None:
    """An unsigned shard message on the s3 queue, to a worker that serves Papermerge only."""
    keys = _fill_bucket(fs)
    fs.start_worker(concurrency=1)
    queue = fs.queues["s3"]
    task = fs.sender.send_task(SHARD, kwargs=_forged(fs), queue=queue)
    wait_until(_drained(fs, queue), timeout=60, what="the forged message consumed")
    wait_until(
        lambda: str(task.id) in fs.workers[0].log(), timeout=30, what="the worker's answer"
    )
    left = set(fs.listing())
    log = fs.workers[0].log()
    record(
        "Forged delete message (Papermerge worker)",
        result=f"{len(keys & left)}/{len(keys)} objects kept",
        figure=f"{len(keys - left)} deleted",
    )
    assert keys <= left, f"the forged message deleted {sorted(keys - left)}"
    assert "s3w_sync_shard" in log

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
from collections.abc import Callable
from typing import Any

from tests.support.results import record
from tests.support.services import wait_until
from tests.support.stack import Stack

SHARD = "s3w_sync_shard"
OBJECTS = 5


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


def test_forged_delete_on_the_papermerge_queue_deletes_nothing(
    make_stack: Callable[..., Stack],
) -> None:
    """An unsigned shard message on the s3 queue, to a worker that serves Papermerge only."""
    fs = make_stack()
    keys = _fill_bucket(fs)
    fs.start_worker(concurrency=1)
    queue = fs.queues["s3"]
    task = fs.sender.send_task(SHARD, kwargs=_forged(fs), queue=queue)
    wait_until(_drained(fs, queue), timeout=60, what="the forged message consumed")
    wait_until(lambda: str(task.id) in fs.workers[0].log(), timeout=30, what="the worker's answer")
    left = set(fs.listing())
    log = fs.workers[0].log()
    record(
        "Forged delete message (Papermerge worker)",
        block="security",
        result=f"{len(keys & left)}/{len(keys)} objects kept",
        figure=f"{len(keys - left)} deleted",
    )
    assert keys <= left, f"the forged message deleted {sorted(keys - left)}"
    assert "s3w_sync_shard" in log


FLEET_KEY = "fleet-key-" + uuid.uuid4().hex + uuid.uuid4().hex


def test_fleet_worker_runs_only_what_the_operator_signed(
    make_stack: Callable[..., Stack],
) -> None:
    """A worker holding the key and consuming the fleet queue: unsigned, wrongly signed,
    altered and expired delete messages, and a signed delete on a media root that is not a
    full mirror, all refused with one line that never shows the key; a signed delete within
    its signed bound on a matching media root deletes exactly that bound."""
    from s3w_tasks.fleet.authority import sign

    fleet = make_stack(extra_env={"S3W_FLEET_KEY": FLEET_KEY})
    keys = _fill_bucket(fleet)
    fleet_queue = f"{fleet.prefix}_s3fleet"
    queues = [*fleet.queues.values(), fleet_queue]
    fleet.start_worker(concurrency=1, queues=queues)
    other_key = b"another-key-" + uuid.uuid4().hex.encode() * 2
    valid_empty_root = sign(
        SHARD, {**_forged(fleet), "local_files": OBJECTS}, FLEET_KEY.encode(), ttl=600
    )
    altered = {**sign(SHARD, {**_forged(fleet), "local_files": 0}, FLEET_KEY.encode(), ttl=600)}
    altered["local_files"] = 0
    altered["options"] = {"delete": True, "max_delete": 10**9, "dry_run": False}
    cases = {
        "unsigned on the s3 queue": (fleet.queues["s3"], _forged(fleet)),
        "unsigned on the fleet queue": (fleet_queue, _forged(fleet)),
        "signed with another key": (fleet_queue, sign(SHARD, _forged(fleet), other_key, ttl=600)),
        "altered after signing": (fleet_queue, altered),
        "expired": (
            fleet_queue,
            sign(SHARD, {**_forged(fleet), "local_files": 0}, FLEET_KEY.encode(), ttl=-5),
        ),
        "signed, media root not a full mirror": (fleet_queue, valid_empty_root),
    }
    sent = {
        what: str(fleet.sender.send_task(SHARD, kwargs=kwargs, queue=queue).id)
        for what, (queue, kwargs) in cases.items()
    }
    outcomes = fleet.wait_for_outcomes(list(sent.values()), timeout=120)
    lines = {tid: rest for _n, tid, out, rest in fleet.log_lines() if out == "failed"}
    left = set(fleet.listing())
    log = fleet.workers[0].log()
    assert keys <= left, f"a refused message deleted {sorted(keys - left)}"
    assert FLEET_KEY not in log
    assert other_key.decode() not in log
    expected = {
        "unsigned on the s3 queue": "refused an unsigned",
        "unsigned on the fleet queue": "refused an unsigned",
        "signed with another key": "signature does not match",
        "altered after signing": "signature does not match",
        "expired": "refused an expired",
        "signed, media root not a full mirror": "not a full mirror",
    }
    for what, tid in sent.items():
        assert outcomes[tid] == "failed", f"{what}: {outcomes[tid]}"
        assert expected[what] in lines[tid], f"{what}: {lines[tid]}"
    # Control: the operator's own signed delete, bounded to one object, on a folder this
    # (empty) media root mirrors exactly (the coordinator also holds no file there).
    one = sorted(keys)[0]
    folder = one[len(fleet.prefix) + 1 :].rsplit("/", 2)[0] + "/"
    allowed = {
        **_forged(fleet),
        "within": folder,
        "folders": [folder],
        "options": {"delete": True, "max_delete": 1},
        "local_files": 0,
    }
    control = str(
        fleet.sender.send_task(
            SHARD, kwargs=sign(SHARD, allowed, FLEET_KEY.encode(), ttl=600), queue=fleet_queue
        ).id
    )
    assert fleet.wait_for_outcomes([control], timeout=60)[control] == "ok"
    after = set(fleet.listing())
    assert after == left - {one}, f"expected only {one} deleted, bucket now {sorted(after)}"
    record(
        "Forged and unsigned fleet messages",
        block="security",
        result=(
            f"{len(cases)}/{len(cases)} refused (unsigned x2, other key, altered, expired, "
            f"not a full mirror); {len(keys & left)}/{len(keys)} objects kept; key in log: no"
        ),
        figure="0 objects deleted by a refused message; signed control deleted 1 (its bound)",
    )

"""Helpers for distributed-sync tests: a few real workers on one queue, and bucket checks.

env = cluster_env(s3_service, bucket=..., media_root=..., broker_url=..., queue=...)
workers = start_workers(env, 3, log_dir=tmp_path)
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.support.celery_worker import Worker, start_worker
from tests.tasks.conftest import stack_env

#: A fleet key for test clusters (tests of refusals use other values).
FLEET_KEY = "test-fleet-key-" + "0123456789abcdef" * 2


def cluster_env(
    s3: Any,
    *,
    bucket: str,
    media_root: Path,
    broker_url: str,
    queue: str,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The settings a coordinator and its workers share (no database: sync needs none)."""
    env = stack_env(s3, bucket=bucket, db_url="", broker_url=broker_url, media_root=media_root)
    del env["PM_DB_URL"]
    env.update({"PM_S3_QUEUE_NAME": queue, "PM_S3_PREVIEW_QUEUE_NAME": f"{queue}-preview"})
    # Shards are fleet tasks: signed with this key and sent to the fleet queue (here the
    # same name as the s3 queue, which the workers consume).
    env.update({"S3W_FLEET_KEY": FLEET_KEY, "S3W_FLEET_QUEUE_NAME": queue})
    env.update(extra or {})
    return env


def start_workers(
    env: dict[str, str], count: int, *, log_dir: Path, concurrency: int = 1
) -> list[Worker]:
    """``count`` worker processes consuming the env's s3 queue (started side by side)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [
            pool.submit(
                start_worker,
                env,
                queues=[env["PM_S3_QUEUE_NAME"]],
                concurrency=concurrency,
                log_dir=log_dir,
            )
            for _ in range(count)
        ]
    started = [f.result() for f in futures if f.exception() is None]
    if len(started) < count:
        stop_workers(started)
        raise next(exc for f in futures if (exc := f.exception()) is not None)
    return started


def stop_workers(workers: list[Worker]) -> None:
    """Stop them side by side (each waits for its running task, as a deployment does)."""
    with ThreadPoolExecutor(max_workers=max(1, len(workers))) as pool:
        list(pool.map(lambda w: w.stop(), workers))


def local_digests(root: Path) -> dict[str, tuple[int, str]]:
    """Relative key -> (size, MD5 hex) of every file under ``root``."""
    found = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            data = path.read_bytes()
            key = path.relative_to(root).as_posix()
            found[key] = (len(data), hashlib.md5(data, usedforsecurity=False).hexdigest())
    return found


def bucket_digests(s3: Any, bucket: str, prefix: str = "") -> dict[str, tuple[int, str]]:
    """Key (relative to ``prefix``) -> (size, ETag) of every object; a single-part ETag is
    the MD5 of the content, so equal digests mean byte-identical objects."""
    head = f"{prefix}/" if prefix else ""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=head):
        for item in page.get("Contents", []):
            found[item["Key"][len(head) :]] = (item["Size"], item["ETag"].strip('"'))
    return found

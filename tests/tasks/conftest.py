"""Fixtures for the worker tests: a Papermerge database, a bucket, a broker and a real worker.

A worker is slow to start, so a test module starts one (``module_stack``) and shares it: its
database, bucket, media root and queue names belong to that module alone. Each module uses
its own Redis database number (``REDIS_DB`` in the module) and a unique ``PM_PREFIX`` or
queue names, so parallel runs on one Redis server do not see each other's messages.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.celery_worker import Worker, start_worker


@dataclass
class Stack:
    """One module's services and worker, and the core-like sender that feeds it."""

    db_url: str
    bucket: str
    prefix: str
    media_root: Path
    broker_url: str
    s3: Any
    env: dict[str, str]
    queue_names: dict[str, str]
    sender: Any = None
    worker: Worker | None = None
    log_dir: Path | None = None
    workers: list[Worker] = field(default_factory=list)

    def send(self, name: str, *, task_id: str | None = None, **kwargs: Any) -> str:
        """Send like the core: by name, kwargs only, to the queue the core would use."""
        queue = self.queue_names[pm.QUEUES[name]]
        result = self.sender.send_task(name, kwargs=kwargs, queue=queue, task_id=task_id)
        return str(result.id)

    def run(self, name: str, *, timeout: float = 60, **kwargs: Any) -> str:
        """Send and wait for the worker's outcome line; returns ``ok`` or ``failed``."""
        assert self.worker is not None
        return self.worker.wait_for_outcome(self.send(name, **kwargs), timeout=timeout)

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return dict(self.s3.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise

    def get(self, key: str) -> tuple[bytes, str]:
        response = self.s3.get_object(Bucket=self.bucket, Key=key)
        return response["Body"].read(), response["ContentType"]

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def keys(self, prefix: str = "") -> list[str]:
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            found += [obj["Key"] for obj in page.get("Contents", [])]
        return found

    def start_worker(self, **kwargs: Any) -> Worker:
        kwargs.setdefault("log_dir", self.log_dir)
        worker = start_worker(self.env, **kwargs)
        self.workers.append(worker)
        self.worker = worker
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()


def queue_names(prefix: str) -> dict[str, str]:
    """Papermerge's rule: ``{PM_PREFIX}_{name}`` when the prefix is set, else the name."""
    return {q: (f"{prefix}_{q}" if prefix else q) for q in ("s3", "s3preview")}


def _with_database(url: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _empty_and_delete_bucket(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def redis_db_url(server_url: str, db: int) -> str:
    return f"{server_url.rstrip('/')}/{db}"


def purge_queues(broker_url: str, names: list[str]) -> None:
    """Drop leftover messages in these queues (from an earlier, interrupted run)."""
    import redis

    client = redis.Redis.from_url(broker_url)
    try:
        client.delete(*names)
    finally:
        client.close()


@pytest.fixture(scope="module")
def module_db(pg_server_url: str) -> Iterator[str]:
    """A database with the Papermerge schema for one test module (dropped afterwards)."""
    psycopg2 = importlib.import_module("psycopg2")
    from psycopg2 import sql

    name = f"s3w_tasks_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(pg_server_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = _with_database(pg_server_url, name)
        pm.create_schema(url)
        yield url
        with admin.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        admin.close()


@pytest.fixture(scope="module")
def module_bucket(s3_service: Any) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:20]}"
    client = s3_service.client()
    client.create_bucket(Bucket=name)
    yield name
    _empty_and_delete_bucket(client, name)


def stack_env(
    s3: Any,
    *,
    bucket: str,
    db_url: str,
    broker_url: str,
    media_root: Path,
    prefix: str = "",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    env = {
        "STORAGE_BACKEND": "aws",
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_REGION_NAME": s3.region,
        "PM_S3_ENDPOINT_URL": s3.endpoint,
        "PM_S3_BUCKET_NAME": bucket,
        "PM_MEDIA_ROOT": str(media_root),
        "PM_DB_URL": db_url,
        "PM_REDIS_URL": broker_url,
        "PM_LOG_CONFIG": str(media_root.parent / "no-log-config.yaml"),
        "S3W_RETRY_BACKOFF": "0.5",
        "S3W_RETRY_BACKOFF_MAX": "4",
        "S3W_NOT_READY_RETRY_DELAY": "0.5",
        "S3W_WORKER_LOST_RETRY_DELAY": "0.5",
    }
    if prefix:
        env["PM_PREFIX"] = prefix
    env.update(extra or {})
    return env


@pytest.fixture(scope="module")
def stack_factory(
    s3_service: Any,
    module_db: str,
    module_bucket: str,
    redis_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Stack]]:
    """Builds the module's :class:`Stack` (and starts its worker unless ``start=False``)."""
    made: list[Stack] = []

    def make(
        *,
        redis_db: int,
        prefix: str = "",
        extra_env: dict[str, str] | None = None,
        start: bool = True,
        s3: Any | None = None,
        bucket: str | None = None,
        broker_url: str | None = None,
        **worker_kwargs: Any,
    ) -> Stack:
        base = tmp_path_factory.mktemp("stack")
        media_root = base / "media"
        media_root.mkdir()
        broker = broker_url or redis_db_url(redis_server_url, redis_db)
        server = s3 or s3_service
        names = queue_names(prefix)
        if "PM_S3_QUEUE_NAME" in (extra_env or {}):
            names["s3"] = (extra_env or {})["PM_S3_QUEUE_NAME"]
        if "PM_S3_PREVIEW_QUEUE_NAME" in (extra_env or {}):
            names["s3preview"] = (extra_env or {})["PM_S3_PREVIEW_QUEUE_NAME"]
        if broker.startswith("redis"):
            purge_queues(broker, list(names.values()))
        if bucket is None:
            bucket = module_bucket
        stack = Stack(
            db_url=module_db,
            bucket=bucket,
            prefix=prefix,
            media_root=media_root,
            broker_url=broker,
            s3=server.client(),
            env=stack_env(
                server,
                bucket=bucket,
                db_url=module_db,
                broker_url=broker,
                media_root=media_root,
                prefix=prefix,
                extra=extra_env,
            ),
            queue_names=names,
            sender=pm.core_app(broker),
            log_dir=base,
        )
        made.append(stack)
        if start:
            stack.start_worker(**worker_kwargs)
        return stack

    yield make
    for stack in made:
        stack.stop_workers()
        stack.sender.close()


@pytest.fixture(scope="module")
def user(module_db: str) -> uuid.UUID:
    return pm.insert_user(module_db)


# ------------------------------------------------------------------------ test files


def pdf_bytes(pages: int = 1, text: str = "s3w") -> bytes:
    """A small real PDF with ``pages`` pages."""
    from fpdf import FPDF

    doc = FPDF(format="A4")
    doc.set_font("helvetica", size=24)
    for number in range(1, pages + 1):
        doc.add_page()
        doc.cell(text=f"{text} page {number}")
    return bytes(doc.output())


def image_bytes(kind: str, pages: int = 1, size: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG, PNG or (multi-page) TIFF image."""
    import io

    from PIL import Image

    frames = [
        Image.new("RGB", size, (40 * (i + 1) % 256, 120, 200 - 30 * i % 200)) for i in range(pages)
    ]
    out = io.BytesIO()
    fmt = {"jpeg": "JPEG", "png": "PNG", "tiff": "TIFF"}[kind]
    if pages > 1:
        frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:])
    else:
        frames[0].save(out, format=fmt)
    return out.getvalue()


JPEG_MAGIC = b"\xff\xd8\xff"

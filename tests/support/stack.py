"""A Papermerge-like stack for one scenario: database, bucket, media root, broker, workers.

Built on tests/support (Papermerge schema and rows, the real worker subprocess); adds what
the scenarios need at volume: documents inserted in bulk, outcomes counted across several
workers (including killed ones), and the bucket's contents compared with the media root.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support import papermerge as pm
from tests.support.celery_worker import Worker, start_worker
from tests.support.services import wait_until

_OUTCOME = re.compile(r"task=(\S+) id=(\S+) .*?outcome=(ok|failed|retry)\b(.*)")
_RECEIVED = re.compile(r"Task \S+\[([0-9a-f-]+)\] received")


# ---------------------------------------------------------------------------- database


@contextlib.contextmanager
def papermerge_database(server_url: str) -> Iterator[str]:
    """A fresh database with the Papermerge schema on ``server_url``; dropped afterwards."""
    import psycopg2
    from psycopg2 import sql

    name = f"s3w_rel_{uuid.uuid4().hex[:12]}"

    def admin(statement: str) -> None:
        # A connection per statement: the server may have been restarted in between.
        conn = psycopg2.connect(server_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL(statement).format(sql.Identifier(name)))
        finally:
            conn.close()

    admin("CREATE DATABASE {}")
    try:
        url = with_database(server_url, name)
        pm.create_schema(url)
        yield url
    finally:
        admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def with_database(url: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@dataclass(frozen=True)
class Row:
    """One document with one version, as inserted by :func:`bulk_documents`."""

    doc_id: uuid.UUID
    version_id: uuid.UUID
    file_name: str
    page_ids: tuple[uuid.UUID, ...] = ()


def bulk_documents(
    db_url: str,
    user: uuid.UUID,
    names: list[str],
    *,
    mime_type: str = pm.PDF,
    page_count: int = 1,
    processing_status: str = "ready",
    preview_status: str | None = None,
) -> list[Row]:
    """Insert one document (node, document, version 1, ``page_count`` pages) per name, in
    a few statements, so thousands take seconds."""
    from psycopg2.extras import execute_values

    now = datetime.now(UTC)
    rows = [
        Row(uuid.uuid4(), uuid.uuid4(), name, tuple(uuid.uuid4() for _ in range(page_count)))
        for name in names
    ]
    u = str(user)
    with pm.connect(db_url) as conn, conn.cursor() as cur:
        execute_values(
            cur,
            "INSERT INTO nodes (id, title, ctype, lang, created_at, updated_at, created_by,"
            " updated_by) VALUES %s",
            [(str(r.doc_id), r.file_name[:200], "document", "deu", now, now, u, u) for r in rows],
        )
        execute_values(
            cur,
            "INSERT INTO documents (node_id, ocr, ocr_status, preview_status, processing_status)"
            " VALUES %s",
            [(str(r.doc_id), False, "unknown", preview_status, processing_status) for r in rows],
            template="(%s, %s, %s, %s::preview_status, %s::document_processing_status)",
        )
        execute_values(
            cur,
            "INSERT INTO document_versions (id, number, file_name, document_id, lang, size,"
            " page_count, created_at, updated_at, created_by, updated_by, mime_type, is_original)"
            " VALUES %s",
            [
                (
                    str(r.version_id),
                    1,
                    r.file_name,
                    str(r.doc_id),
                    "deu",
                    0,
                    page_count,
                    now,
                    now,
                    u,
                    u,
                    mime_type,
                    True,
                )
                for r in rows
            ],
        )
        if page_count:
            execute_values(
                cur,
                "INSERT INTO pages (id, number, page_count, lang, document_version_id) VALUES %s",
                [
                    (str(p), n, page_count, "deu", str(r.version_id))
                    for r in rows
                    for n, p in enumerate(r.page_ids, start=1)
                ],
            )
    return rows


def query(db_url: str, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with pm.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


# ------------------------------------------------------------------------------- files


def pdf_bytes(pages: int = 1, text: str = "s3w") -> bytes:
    """A small real PDF with ``pages`` pages."""
    from fpdf import FPDF

    doc = FPDF(format=(105, 148))
    doc.set_font("helvetica", size=14)
    for number in range(1, pages + 1):
        doc.add_page()
        doc.cell(text=f"{text} page {number}")
    return bytes(doc.output())


def png_bytes(size: tuple[int, int] = (160, 120)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# ------------------------------------------------------------------------------- stack


@dataclass
class Stack:
    """One scenario's services and the core-like sender that feeds its workers."""

    db_url: str
    bucket: str
    s3: Any  # an S3Service-like object (endpoint, keys, client())
    broker_url: str
    media_root: Path
    prefix: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)
    _sender: Any = None

    @property
    def env(self) -> dict[str, str]:
        env = {
            "STORAGE_BACKEND": "aws",
            "AWS_ACCESS_KEY_ID": self.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
            "AWS_REGION_NAME": "us-east-1",
            "PM_S3_ENDPOINT_URL": self.s3.endpoint,
            "PM_S3_BUCKET_NAME": self.bucket,
            "PM_MEDIA_ROOT": str(self.media_root),
            "PM_DB_URL": self.db_url,
            "PM_REDIS_URL": self.broker_url,
            "PM_PREFIX": self.prefix,
            "PM_LOG_CONFIG": str(self.log_dir / "no-log-config.yaml"),
            "S3W_RETRY_BACKOFF": "0.5",
            "S3W_RETRY_BACKOFF_MAX": "4",
            "S3W_NOT_READY_RETRY_DELAY": "0.5",
            "S3W_WORKER_LOST_RETRY_DELAY": "0.5",
        }
        env.update(self.extra_env)
        return env

    @property
    def queues(self) -> dict[str, str]:
        return {q: f"{self.prefix}_{q}" for q in ("s3", "s3preview")}

    @property
    def sender(self) -> Any:
        if self._sender is None:
            self._sender = pm.core_app(self.broker_url)
        return self._sender

    def send(self, name: str, **kwargs: Any) -> str:
        """Send like the core: by name, kwargs only, to the queue the core would use."""
        queue = self.queues[pm.QUEUES[name]]
        return str(self.sender.send_task(name, kwargs=kwargs, queue=queue).id)

    def start_worker(self, **kwargs: Any) -> Worker:
        kwargs.setdefault("log_dir", self.log_dir)
        kwargs.setdefault("concurrency", 2)
        worker = start_worker(self.env, **kwargs)
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self._sender is not None:
            self._sender.close()

    # ------------------------------------------------------------------ outcomes

    def log_lines(self) -> Iterator[tuple[str, str, str, str]]:
        """(task name, task id, outcome, rest of line) from every worker's log, in order."""
        for worker in self.workers:
            for match in _OUTCOME.finditer(worker.log()):
                yield match.group(1), match.group(2), match.group(3), match.group(4)

    def outcomes(self) -> dict[str, str]:
        """Task id -> last final outcome (``ok``/``failed``) seen in any worker's log."""
        return {tid: out for _n, tid, out, _r in self.log_lines() if out != "retry"}

    def ok_counts(self) -> Counter[str]:
        """How many times each task id logged ``outcome=ok`` (2+ means it ran twice)."""
        return Counter(tid for _n, tid, out, _r in self.log_lines() if out == "ok")

    def retries(self) -> int:
        return sum(1 for _n, _t, out, _r in self.log_lines() if out == "retry")

    def wait_for_outcomes(
        self, task_ids: list[str], *, timeout: float, alive: bool = True
    ) -> dict[str, str]:
        """Wait until every task logged a final outcome in some worker's log."""
        wanted = set(task_ids)

        def done() -> bool:
            if alive and not any(w.alive() for w in self.workers):
                raise RuntimeError("no worker is running:\n" + self.workers[-1].tail())
            return wanted <= set(self.outcomes())

        try:
            wait_until(done, timeout=timeout, what="task outcomes", interval=0.5)
        except TimeoutError:
            missing = wanted - set(self.outcomes())
            tail = self.workers[-1].tail() if self.workers else ""
            raise TimeoutError(
                f"{len(missing)} of {len(wanted)} tasks without an outcome after {timeout} s"
                f" (e.g. {sorted(missing)[:3]}):\n{tail}"
            ) from None
        outcomes = self.outcomes()
        return {t: outcomes[t] for t in task_ids}

    def received(self) -> set[str]:
        """Task ids some worker logged as received (the broker had handed them over)."""
        found: set[str] = set()
        for worker in self.workers:
            found.update(_RECEIVED.findall(worker.log()))
        return found

    def last_events(self) -> dict[str, tuple[int, str]]:
        """Task id -> (index of the worker, ``received``/``retry``/``ok``/``failed``) of the
        last thing logged about it. The stack's workers run one after another (a killed one is
        dead before the next starts), so the worker's index orders events across logs."""
        last: dict[str, tuple[int, str]] = {}
        for index, worker in enumerate(self.workers):
            for line in worker.log().splitlines():
                if received := _RECEIVED.search(line):
                    last[received.group(1)] = (index, "received")
                elif outcome := _OUTCOME.search(line):
                    last[outcome.group(2)] = (index, outcome.group(3))
        return last

    def unacked_ids(self) -> set[str]:
        """Task ids of the messages delivered but not yet acknowledged: those in the Redis
        transport's ``unacked`` hash, which go back to their queue after the visibility
        timeout when the worker that holds them dies."""
        import json

        import redis

        client = redis.Redis.from_url(self.broker_url)
        try:
            held = client.hvals("unacked")
        finally:
            client.close()
        # Each value is [message, exchange, routing key]; protocol 2 keeps the id in headers.
        return {str(json.loads(value)[0]["headers"]["id"]) for value in held}

    def broker_idle(self) -> bool:
        """Nothing queued for this stack and nothing delivered-but-unacknowledged."""
        import redis

        client = redis.Redis.from_url(self.broker_url)
        try:
            queued = sum(client.llen(q) for q in self.queues.values())
            return queued == 0 and client.hlen("unacked") == 0
        except redis.RedisError:
            return False
        finally:
            client.close()

    def wait_settled(
        self, task_ids: list[str], *, timeout: float, supervise: bool = False
    ) -> tuple[dict[str, str], int]:
        """Wait until every task has an outcome or nothing more can come (the broker idle on
        two checks in a row). With ``supervise`` a worker that exited is replaced, as a
        container's restart policy would. Returns (outcomes so far, workers restarted)."""
        wanted = set(task_ids)
        restarts = 0
        idle_checks = 0

        def settled() -> bool:
            nonlocal restarts, idle_checks
            if wanted <= set(self.outcomes()):
                return True
            if not any(w.alive() for w in self.workers):
                if not supervise:
                    raise RuntimeError("no worker is running:\n" + self.workers[-1].tail())
                self.start_worker()
                restarts += 1
                return False
            idle_checks = idle_checks + 1 if self.broker_idle() else 0
            return idle_checks >= 2

        wait_until(settled, timeout=timeout, what="tasks settled", interval=1.0)
        outcomes = self.outcomes()
        return {t: outcomes[t] for t in task_ids if t in outcomes}, restarts

    def wait_for_count(self, count: int, *, timeout: float) -> None:
        """Wait until at least ``count`` final outcomes are logged in all."""
        wait_until(
            lambda: len(self.outcomes()) >= count,
            timeout=timeout,
            what=f"{count} outcomes",
            interval=0.2,
        )

    def failure_lines(self) -> list[str]:
        return [
            f"{name} {tid}{rest}" for name, tid, out, rest in self.log_lines() if out == "failed"
        ]

    # -------------------------------------------------------------------- bucket

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def listing(self, prefix: str = "") -> dict[str, tuple[int, str]]:
        """Full key -> (size, ETag without quotes) for every object under ``prefix``."""
        found: dict[str, tuple[int, str]] = {}
        client = self.s3.client()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.key(prefix)
        )
        for page in pages:
            for obj in page.get("Contents", []):
                found[obj["Key"]] = (obj["Size"], obj["ETag"].strip('"'))
        return found

    def write_media(self, row: Row, data: bytes) -> Path:
        path = self.media_root / pm.docver_key(row.version_id, row.file_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


@contextlib.contextmanager
def stack(
    *,
    pg_server_url: str,
    s3: Any,
    broker_url: str,
    tmp: Path,
    extra_env: dict[str, str] | None = None,
    bucket: str | None = None,
) -> Iterator[Stack]:
    """A fresh database, bucket (unless given), media root and queue prefix; workers are
    stopped and the bucket emptied afterwards."""
    client = s3.client()
    own_bucket = bucket is None
    name = bucket or f"r-{uuid.uuid4().hex[:20]}"
    if own_bucket:
        client.create_bucket(Bucket=name)
    media_root = tmp / "media"
    media_root.mkdir(parents=True, exist_ok=True)
    with papermerge_database(pg_server_url) as db_url:
        made = Stack(
            db_url=db_url,
            bucket=name,
            s3=s3,
            broker_url=broker_url,
            media_root=media_root,
            prefix=f"r{uuid.uuid4().hex[:8]}",
            log_dir=tmp,
            extra_env=dict(extra_env or {}),
        )
        try:
            yield made
        finally:
            made.stop()
            if own_bucket:
                from botocore.exceptions import BotoCoreError, ClientError

                with contextlib.suppress(BotoCoreError, ClientError):  # S3 may be down
                    empty_bucket(client, name)


def empty_bucket(client: Any, bucket: str, *, delete: bool = True) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    if delete:
        client.delete_bucket(Bucket=bucket)

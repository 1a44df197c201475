"""The contract's tasks: thin wrappers over :mod:`s3w_tasks.operations`.

Each task takes the kwargs Papermerge core sends, calls one plain function, retries
transient errors with exponential backoff and jitter up to ``S3W_TASK_MAX_RETRIES``, fails
at once on permanent errors, and logs one line per outcome (task id, ids, duration).

A task that keeps killing its worker ends as failed two ways: a pool process that dies
mid-task is turned into a counted retry by Celery (``task_retry_on_worker_lost``), bounded
by the same retry limit; and with a Redis broker each delivery of a message is counted in a
Redis key, so a message redelivered more than ``S3W_TASK_MAX_DELIVERIES`` times (the whole
worker died each time) is failed instead of run again.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery import Task
from celery.signals import setup_logging, task_failure, worker_process_init

from s3w_tasks import contract, jsonlog, operations
from s3w_tasks.celery_app import app
from s3w_tasks.errors import NotReady, PermanentError, describe, is_transient
from s3w_tasks.logs import clean
from s3w_tasks.settings import get_settings

log = logging.getLogger("s3w_tasks.tasks")

#: Errors the tasks expect and classify; Celery logs these without a traceback.
EXPECTED = operations.KNOWN_ERRORS


def backoff(retries: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: a delay in [c/2, c], c = min(cap, base * 2**retries)."""
    ceiling = min(cap, base * (2 ** min(retries, 30)))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


def _token(value: object) -> str:
    """A value from a message as one ``key=value`` token: control characters escaped
    (:func:`s3w_tasks.logs.clean`), and spaces and ``=`` too, so that it cannot add a token
    (``outcome=ok``) or a line of its own to the outcome line; cut short."""
    return clean(value, 80).replace(" ", "\\x20").replace("=", "\\x3d")


def _label(ids: dict[str, Any]) -> str:
    """``name=value`` tokens for the outcome line (values escaped by :func:`_token`)."""
    parts = []
    for name, value in ids.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            shown = ",".join(_token(v) for v in value[:3])
            more = f",+{len(value) - 3}" if len(value) > 3 else ""
            parts.append(f"{name}=[{shown}{more}]")
        else:
            parts.append(f"{name}={_token(value)}")
    return " ".join(parts)


class ContractTask(Task):  # type: ignore[misc]
    """Base class of the contract's tasks (settings come from the app's configuration)."""

    throws = EXPECTED
    #: Called as give_up(kwargs, message, task_id) when the task is abandoned without its
    #: own code running to the end (time limit, lost worker, delivery limit).
    give_up: Callable[[dict[str, Any], str, str], None] | None = None

    @property
    def default_retry_delay(self) -> float:
        """Delay before a task whose worker process died runs again (Celery reads this)."""
        return get_settings().worker_lost_retry_delay

    @property
    def max_retries(self) -> int:
        """The bound on retries, transient errors and lost workers alike (Celery reads this)."""
        return get_settings().max_retries

    def abandon(self, kwargs: dict[str, Any], message: str, task_id: str) -> None:
        handler = type(self).give_up
        if handler is None:
            return
        try:
            handler(kwargs, message, task_id)
        except EXPECTED as exc:  # recording the failure failed; the log line still says it
            log.error(
                "task=%s id=%s could not record its failure: %s",
                self.name,
                _token(task_id),
                describe(exc),
            )


# ---------------------------------------------------------------- delivery counting


class _DeliveryLedger:
    """Counts deliveries of each message in the Redis broker (one client per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._client: Any = None

    def _redis(self) -> Any:
        pid = os.getpid()
        with self._lock:
            if self._client is None or self._pid != pid:
                import redis

                self._client = redis.Redis.from_url(
                    get_settings().broker_url, socket_timeout=5, socket_connect_timeout=5
                )
                self._pid = pid
            return self._client

    def count(self, task_id: str, retries: int) -> int | None:
        """This delivery's number (1 = first), or None when it cannot be counted."""
        settings = get_settings()
        if not settings.is_redis_broker or not task_id:
            return None
        import redis

        key = f"s3w:deliveries:{task_id}:{retries}"
        try:
            pipe = self._redis().pipeline()
            pipe.incr(key)
            pipe.expire(key, settings.visibility_timeout * (settings.max_deliveries + 1))
            number, _ = pipe.execute()
        except redis.RedisError as exc:
            log.warning("cannot count deliveries of task %s: %s", task_id, describe(exc))
            return None
        return int(number)

    def cache_clear(self) -> None:
        with self._lock:
            self._client = None
            self._pid = None


deliveries = _DeliveryLedger()


# --------------------------------------------------------------------------- running


def _run(task: ContractTask, ids: dict[str, Any], call: Callable[[bool], Any]) -> Any:
    settings = get_settings()
    request = task.request
    task_id = request.id or "-"
    label = f"{_token(task_id)} {_label(ids)}"  # the id and ids, as logged
    started = time.monotonic()
    number = deliveries.count(task_id, request.retries or 0)
    if number is not None and number > settings.max_deliveries:
        message = (
            f"delivered {number} times without finishing (it may be stopping its worker); given up"
        )
        task.abandon(dict(request.kwargs or {}), message, task_id)
        log.error(
            "task=%s id=%s outcome=failed error=%s",
            task.name,
            label,
            message,
            extra=jsonlog.outcome("failed", error=message),
        )
        raise PermanentError(message)
    last = (request.retries or 0) >= settings.max_retries
    try:
        result = call(last)
    except MemoryError as exc:
        # Celery would take the whole worker down for it; record it like any failure.
        message = operations.reason(exc)
        task.abandon(dict(request.kwargs or {}), message, task_id)
        log.error(
            "task=%s id=%s outcome=failed error=%s",
            task.name,
            label,
            message,
            extra=jsonlog.outcome("failed", error=message),
        )
        raise PermanentError(message) from None
    except SoftTimeLimitExceeded:
        message = f"stopped after {settings.soft_time_limit} s (S3W_TASK_SOFT_TIME_LIMIT)"
        task.abandon(dict(request.kwargs or {}), message, task_id)
        log.error(
            "task=%s id=%s outcome=failed duration=%.2fs error=%s",
            task.name,
            label,
            time.monotonic() - started,
            message,
            extra=jsonlog.outcome("failed", duration=time.monotonic() - started, error=message),
        )
        raise PermanentError(message) from None
    except EXPECTED as exc:
        duration = time.monotonic() - started
        if is_transient(exc) and not last:
            base = (
                settings.not_ready_retry_delay
                if isinstance(exc, NotReady)
                else settings.retry_backoff
            )
            countdown = backoff(request.retries or 0, base, settings.retry_backoff_max)
            log.warning(
                "task=%s id=%s outcome=retry attempt=%d/%d in=%.1fs duration=%.2fs error=%s",
                task.name,
                label,
                (request.retries or 0) + 1,
                settings.max_retries,
                countdown,
                duration,
                describe(exc),
                extra=jsonlog.outcome(
                    "retry",
                    duration=duration,
                    error=describe(exc),
                    attempt=(request.retries or 0) + 1,
                ),
            )
            raise task.retry(
                exc=exc, countdown=countdown, max_retries=settings.max_retries
            ) from None
        log.error(
            "task=%s id=%s outcome=failed duration=%.2fs error=%s",
            task.name,
            label,
            duration,
            describe(exc),
            extra=jsonlog.outcome("failed", duration=duration, error=describe(exc)),
        )
        raise
    log.info(
        "task=%s id=%s outcome=ok duration=%.2fs result=%s",
        task.name,
        label,
        time.monotonic() - started,
        result,
        extra=jsonlog.outcome("ok", duration=time.monotonic() - started),
    )
    return result


def _ignore_extra(name: str, extra: dict[str, Any]) -> None:
    if extra:
        log.warning("task=%s ignores unknown kwargs: %s", name, clean(", ".join(sorted(extra))))


def _fail_thumbnail(kwargs: dict[str, Any], message: str, task_id: str) -> None:
    doc_id = kwargs.get("doc_id")
    if doc_id:
        operations.fail_thumbnail(operations.parse_id(doc_id, "document id"), message, task_id)


def _fail_upload(kwargs: dict[str, Any], message: str, task_id: str) -> None:
    doc_id = kwargs.get("document_id")
    if doc_id:
        operations.fail_upload(doc_id, message)


# ------------------------------------------------------------------------- the tasks


@app.task(  # type: ignore[untyped-decorator]
    name=contract.PROCESS_UPLOAD, bind=True, base=ContractTask, give_up=_fail_upload
)
def process_upload(
    self: ContractTask,
    document_id: str | None = None,
    document_version_id: str | None = None,
    lang: str | None = None,
    user_id: str | None = None,
    **extra: Any,
) -> Any:
    _ignore_extra(self.name, extra)
    return _run(
        self,
        {"document_id": document_id, "document_version_id": document_version_id},
        lambda last: operations.process_upload(
            document_id, document_version_id, lang, user_id, last_attempt=last
        ),
    )


@app.task(  # type: ignore[untyped-decorator]
    name=contract.GENERATE_DOC_THUMBNAIL, bind=True, base=ContractTask, give_up=_fail_thumbnail
)
def generate_doc_thumbnail(self: ContractTask, doc_id: str | None = None, **extra: Any) -> Any:
    _ignore_extra(self.name, extra)

    def call(last: bool) -> dict[str, Any]:
        status = operations.generate_doc_thumbnail(doc_id, token=self.request.id, last_attempt=last)
        return {"doc_id": doc_id, "status": status}

    return _run(self, {"doc_id": doc_id}, call)


@app.task(  # type: ignore[untyped-decorator]
    name=contract.ADD_DOC_VERS, bind=True, base=ContractTask
)
def add_doc_vers(self: ContractTask, doc_ver_ids: list[str] | None = None, **extra: Any) -> Any:
    _ignore_extra(self.name, extra)
    return _run(
        self, {"doc_ver_ids": doc_ver_ids}, lambda last: operations.add_doc_vers(doc_ver_ids)
    )


@app.task(  # type: ignore[untyped-decorator]
    name=contract.REMOVE_DOC_VERS, bind=True, base=ContractTask
)
def remove_doc_vers(self: ContractTask, doc_ver_ids: list[str] | None = None, **extra: Any) -> Any:
    _ignore_extra(self.name, extra)
    return _run(
        self, {"doc_ver_ids": doc_ver_ids}, lambda last: operations.remove_doc_vers(doc_ver_ids)
    )


@app.task(  # type: ignore[untyped-decorator]
    name=contract.REMOVE_DOC_THUMBNAIL, bind=True, base=ContractTask
)
def remove_doc_thumbnail(self: ContractTask, doc_id: str | None = None, **extra: Any) -> Any:
    _ignore_extra(self.name, extra)
    return _run(
        self,
        {"doc_id": doc_id},
        lambda last: operations.remove_doc_thumbnails([operations.parse_id(doc_id, "document id")]),
    )


@app.task(  # type: ignore[untyped-decorator]
    name=contract.REMOVE_DOCS_THUMBNAIL, bind=True, base=ContractTask
)
def remove_docs_thumbnail(
    self: ContractTask, doc_ids: list[str] | None = None, **extra: Any
) -> Any:
    _ignore_extra(self.name, extra)
    return _run(self, {"doc_ids": doc_ids}, lambda last: operations.remove_doc_thumbnails(doc_ids))


@app.task(  # type: ignore[untyped-decorator]
    name=contract.REMOVE_PAGE_THUMBNAIL, bind=True, base=ContractTask
)
def remove_page_thumbnail(
    self: ContractTask, page_ids: list[str] | None = None, **extra: Any
) -> Any:
    _ignore_extra(self.name, extra)
    return _run(
        self, {"page_ids": page_ids}, lambda last: operations.remove_page_thumbnails(page_ids)
    )


@app.task(  # type: ignore[untyped-decorator]
    name=contract.GENERATE_PAGE_IMAGE, bind=True, base=ContractTask
)
def generate_page_image(
    self: ContractTask,
    page_ids: list[str] | None = None,
    page_id: str | None = None,
    **extra: Any,
) -> Any:
    _ignore_extra(self.name, extra)
    wanted = page_ids if page_ids is not None else page_id
    return _run(self, {"page_ids": wanted}, lambda last: operations.generate_page_images(wanted))


# ------------------------------------------------------------------------- signals


@setup_logging.connect  # type: ignore[untyped-decorator]
def _setup_logging(**_: Any) -> None:
    """The worker's logging: ``PM_LOG_CONFIG`` when the file exists, else the default."""
    from s3w_tasks.logs import configure_logging

    configure_logging()


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _warm_up(**_: Any) -> None:
    """Build this pool process's S3 client and database engine before its first task."""
    from s3w_storage.objects import get_storage
    from s3w_tasks.db import get_engine

    try:
        get_storage()
        get_engine()
    except EXPECTED as exc:  # the first task reports the problem properly
        log.warning("could not prepare S3 and database access: %s", describe(exc))


@task_failure.connect  # type: ignore[untyped-decorator]
def _on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    kwargs: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """Record failures that happen outside the task's code: a hard time limit, or a worker
    lost more often than the retry limit allows (Celery reports both in the main process)."""
    if not isinstance(sender, ContractTask):
        return
    if isinstance(exception, TimeLimitExceeded):
        message = f"killed after {get_settings().time_limit} s (S3W_TASK_TIME_LIMIT)"
    elif isinstance(exception, WorkerLostError):
        message = "its worker process died each time it ran (out of memory or a crash); given up"
    else:
        return
    sender.abandon(dict(kwargs or {}), message, task_id or "-")
    log.error(
        "task=%s id=%s %s outcome=failed error=%s",
        sender.name,
        _token(task_id or "-"),
        _label(dict(kwargs or {})),
        message,
        extra=jsonlog.outcome("failed", error=message),
    )

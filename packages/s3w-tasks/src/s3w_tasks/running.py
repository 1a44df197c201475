"""Running a task: the base class, the delivery count, retries with backoff, the outcome line.

:func:`run_task` is what every task (the contract's and the fleet's) calls with its plain
function; the worker's signals here record what happens outside a task's code (a hard time
limit, a lost worker) and prepare each pool process.

A task that keeps killing its worker ends as failed two ways: a pool process that dies
mid-task is turned into a counted retry by Celery (``task_retry_on_worker_lost``), bounded
by the same retry limit; and with a Redis broker each delivery of a message is counted in a
Redis key, so a message redelivered more than ``S3W_TASK_MAX_DELIVERIES`` times (the whole
worker died each time) is failed instead of run again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery import Task
from celery.signals import setup_logging, task_failure, worker_process_init

from s3w_storage.perprocess import PerProcess
from s3w_tasks import jsonlog
from s3w_tasks.errors import (
    KNOWN_ERRORS,
    NotReady,
    PermanentError,
    clean,
    describe,
    is_transient,
    reason,
)
from s3w_tasks.settings import get_settings

log = logging.getLogger("s3w_tasks.tasks")

#: Errors the tasks expect and classify; Celery logs these without a traceback.
EXPECTED = KNOWN_ERRORS


def backoff(retries: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: a delay in [c/2, c], c = min(cap, base * 2**retries)."""
    ceiling = min(cap, base * (2 ** min(retries, 30)))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


def _token(value: object) -> str:
    """A value from a message as one ``key=value`` token: control characters escaped
    (:func:`s3w_tasks.errors.clean`), and spaces and ``=`` too, so that it cannot add a token
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


def _broker_redis() -> Any:
    import redis

    return redis.Redis.from_url(
        get_settings().broker_url, socket_timeout=5, socket_connect_timeout=5
    )


class _DeliveryLedger:
    """Counts deliveries of each message in the Redis broker (one client per process)."""

    def __init__(self) -> None:
        self._redis: PerProcess[Any] = PerProcess(_broker_redis)

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
        self._redis.cache_clear()


deliveries = _DeliveryLedger()


# --------------------------------------------------------------------------- running


def _given_up(
    task: ContractTask, label: str, message: str, duration: float | None = None
) -> PermanentError:
    """Record a task given up (the give-up hook, the failed outcome line); the error to raise."""
    request = task.request
    task.abandon(dict(request.kwargs or {}), message, request.id or "-")
    took = "" if duration is None else f" duration={duration:.2f}s"
    log.error(
        "task=%s id=%s outcome=failed%s error=%s",
        task.name,
        label,
        took,
        message,
        extra=jsonlog.outcome("failed", duration=duration, error=message),
    )
    return PermanentError(message)


def run_task(task: ContractTask, ids: dict[str, Any], call: Callable[[bool], Any]) -> Any:
    """Run ``call(last_attempt)`` for ``task``: count the delivery, retry transient errors
    with backoff, record and raise permanent ones, and log one outcome line (``ids`` in it)."""
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
        raise _given_up(task, label, message)
    last = (request.retries or 0) >= settings.max_retries
    try:
        result = call(last)
    except MemoryError as exc:
        # Celery would take the whole worker down for it; record it like any failure.
        raise _given_up(task, label, reason(exc)) from None
    except SoftTimeLimitExceeded:
        message = f"stopped after {settings.soft_time_limit} s (S3W_TASK_SOFT_TIME_LIMIT)"
        raise _given_up(task, label, message, time.monotonic() - started) from None
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

"""Task outcomes per minute in Redis, for ``s3w status`` without Prometheus.

``s3w status`` shows tasks per minute and failures in the last hour from them.

Every worker process adds its outcomes to an in-memory tally; a daemon thread writes the tally
to ``s3w:taskstats:<s3 queue>:<minute>`` (a hash outcome -> count, kept two hours) every
:data:`FLUSH_EVERY` seconds, so a task never waits for Redis. The Redis is the progress Redis
(:attr:`s3w_tasks.settings.TaskSettings.progress_url`: the broker when it is Redis); without
one nothing is written. A killed process loses at most its last few seconds of tally.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from typing import Any

from celery.signals import (
    task_failure,
    task_rejected,
    task_retry,
    task_success,
    task_unknown,
    worker_process_shutdown,
    worker_shutdown,
)

from s3w_tasks.errors import TaskError

log = logging.getLogger("s3w_tasks.taskstats")

FLUSH_EVERY = 5.0
#: How long a minute's hash is kept (``s3w status`` reads the last hour).
KEEP = 2 * 3600
OUTCOMES = ("ok", "retried", "failed", "rejected")


def key(scope: str, minute: int) -> str:
    return f"s3w:taskstats:{scope}:{minute}"


def scope() -> str:
    """The deployment's name in the keys: its s3 queue (unique per PM_PREFIX / node)."""
    from s3w_tasks import contract

    return contract.s3_queue()


class _Tally:
    """This process's unwritten outcomes and the thread that writes them."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.counts: Counter[tuple[int, str]] = Counter()
        self.client: Any = None
        self.scope: str | None = None
        self.thread: threading.Thread | None = None
        self.disabled = False

    def add(self, outcome: str) -> None:
        with self.lock:
            self.counts[(int(time.time() // 60), outcome)] += 1
            if self.thread is None and not self.disabled:
                self.thread = threading.Thread(target=self._run, name="s3w-taskstats", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            counts, self.counts = self.counts, Counter()
        if not counts or self.disabled:
            return
        try:
            client, where = self._connect()
            pipe = client.pipeline(transaction=False)
            for (minute, outcome), count in counts.items():
                pipe.hincrby(key(where, minute), outcome, count)
                pipe.expire(key(where, minute), KEEP)
            pipe.execute()
        except TaskError as exc:  # no Redis to write to (an AMQP broker, the demo): stop
            self.disabled = True
            log.debug("task statistics off: %s", exc)
        except _errors() as exc:  # statistics only: the tasks ran; say so at debug level
            log.debug("task statistics not written: %s", exc)

    def _connect(self) -> tuple[Any, str]:
        if self.client is None:
            from s3w_tasks.fleet.runs import connect

            self.client = connect()
            self.scope = scope()
        assert self.scope is not None
        return self.client, self.scope


def _errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.RedisError, OSError)


_tally: _Tally | None = None
_tally_lock = threading.Lock()


def tally() -> _Tally:
    """This process's tally (a forked child gets a fresh one)."""
    global _tally
    with _tally_lock:
        if _tally is None or _tally.pid != os.getpid():
            _tally = _Tally()
        return _tally


def recent(minutes: int = 60, client: Any = None) -> list[dict[str, int]]:
    """Outcome counts of the last ``minutes`` whole minutes and the current one, oldest first."""
    from s3w_tasks.fleet.runs import connect

    client = client or connect()
    now = int(time.time() // 60)
    where = scope()
    pipe = client.pipeline(transaction=False)
    for minute in range(now - minutes, now + 1):
        pipe.hgetall(key(where, minute))
    found = []
    for raw in pipe.execute():
        found.append({k.decode(): int(v) for k, v in raw.items()})
    return found


@task_success.connect  # type: ignore[untyped-decorator]
def _success(**_: Any) -> None:
    tally().add("ok")


@task_retry.connect  # type: ignore[untyped-decorator]
def _retry(**_: Any) -> None:
    tally().add("retried")


@task_failure.connect  # type: ignore[untyped-decorator]
def _failure(**_: Any) -> None:
    tally().add("failed")


@task_rejected.connect  # type: ignore[untyped-decorator]
@task_unknown.connect  # type: ignore[untyped-decorator]
def _rejected(**_: Any) -> None:
    tally().add("rejected")


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _flush(**_: Any) -> None:
    tally().flush()

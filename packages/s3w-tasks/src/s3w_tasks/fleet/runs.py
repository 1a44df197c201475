"""The Redis record of one distributed run: live counters, finished shards, a cancel flag.

A run id names these keys (all expire after :data:`RUN_TTL`):

* ``s3w:run:<id>:live``  hash ``files``/``bytes``: uploads so far, by every attempt of every
  shard (a shard adds its counts as it goes, so the coordinator shows progress inside shards);
* ``s3w:run:<id>:done``  list of JSON shard results, pushed once per finished shard attempt
  (success or final failure) and popped by the coordinator;
* ``s3w:run:<id>:starts`` hash shard -> how many times it was started (a redelivery after a
  worker died counts too);
* ``s3w:run:<id>:cancel`` set when the coordinator is interrupted: shards not yet started
  return at once;
* ``s3w:run:<id>:beat``  a counter every running shard attempt increments every
  :data:`BEAT_EVERY` s, so the coordinator can tell "a worker is busy with a long file" from
  "nothing is running" (see ``distributed_sync``'s ``resend_after``).

Celery's own result backend is not used: the Papermerge tasks keep no results, and this way a
worker needs no extra configuration beyond the Redis it already talks to
(:attr:`s3w_tasks.settings.TaskSettings.progress_url`).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

#: Seconds a run's keys live after their last write (a coordinator that died leaves no litter).
RUN_TTL = 7 * 24 * 3600
#: Seconds between a shard's live-counter writes.
FLUSH_EVERY = 0.25
#: Seconds between a running shard's heartbeats.
BEAT_EVERY = 5.0


def keys(run_id: str) -> tuple[str, str, str, str]:
    """(live, done, cancel, starts) key names of a run."""
    base = f"s3w:run:{run_id}"
    return f"{base}:live", f"{base}:done", f"{base}:cancel", f"{base}:starts"


def beat_key(run_id: str) -> str:
    return f"s3w:run:{run_id}:beat"


def connect(url: str | None = None) -> Any:
    """A Redis client for the run store (``url`` or the settings' progress URL)."""
    import redis

    if url is None:
        from s3w_tasks.settings import get_settings

        url = get_settings().progress_url
    return redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)


class LiveCounter:
    """Adds a shard's uploads to the run's live counters, at most every :data:`FLUSH_EVERY` s.

    Called from the engine's progress callback; :meth:`flush` before the shard reports its
    result, so a finished attempt's counts are exact (a killed attempt loses at most the
    last unflushed fraction of a second).
    """

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.key = keys(run_id)[0]
        self.files = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._last = time.monotonic()

    def __call__(self, files: int, size: int) -> None:
        with self._lock:
            self.files += files
            self.bytes += size
            due = time.monotonic() - self._last >= FLUSH_EVERY
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            files, size = self.files, self.bytes
            self.files = self.bytes = 0
            self._last = time.monotonic()
        if not files and not size:
            return
        pipe = self.client.pipeline()
        pipe.hincrby(self.key, "files", files)
        pipe.hincrby(self.key, "bytes", size)
        pipe.expire(self.key, RUN_TTL)
        pipe.execute()


def report(client: Any, run_id: str, result: dict[str, Any]) -> None:
    """Push one shard's final result for the coordinator."""
    done = keys(run_id)[1]
    pipe = client.pipeline()
    pipe.rpush(done, json.dumps(result, separators=(",", ":")))
    pipe.expire(done, RUN_TTL)
    pipe.execute()


def start(client: Any, run_id: str, shard: str) -> int:
    """Count one start of ``shard``; returns its number (1 = first)."""
    starts = keys(run_id)[3]
    pipe = client.pipeline()
    pipe.hincrby(starts, shard, 1)
    pipe.expire(starts, RUN_TTL)
    number, _ = pipe.execute()
    return int(number)


def restarted(client: Any, run_id: str) -> int:
    """How many shards were started more than once."""
    counts = client.hvals(keys(run_id)[3])
    return sum(1 for n in counts if int(n) > 1)


def cancelled(client: Any, run_id: str) -> bool:
    return bool(client.exists(keys(run_id)[2]))


def cancel(client: Any, run_id: str) -> None:
    client.set(keys(run_id)[2], b"1", ex=RUN_TTL)


def beats(client: Any, run_id: str) -> int:
    """Heartbeats of the run's shards so far (it grows while any shard runs)."""
    return int(client.get(beat_key(run_id)) or 0)


class Heartbeat:
    """Increments the run's beat counter now and every :data:`BEAT_EVERY` s until the
    ``with`` block ends (a daemon thread: a killed worker simply stops beating)."""

    def __init__(self, client: Any, run_id: str, every: float = BEAT_EVERY) -> None:
        self.client = client
        self.key = beat_key(run_id)
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3w-shard-beat", daemon=True)

    def _beat(self) -> None:
        import redis

        try:
            pipe = self.client.pipeline()
            pipe.incr(self.key)
            pipe.expire(self.key, RUN_TTL)
            pipe.execute()
        except (
            redis.RedisError
        ):  # the shard itself reports Redis trouble; a missed beat is harmless
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._beat()

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def forget(client: Any, run_id: str) -> None:
    """Drop the run's record, keeping only the cancel flag: a delivery of one of its shards
    that turns up later (a dead worker's message restored after the visibility timeout)
    returns at once instead of syncing its folders again."""
    pipe = client.pipeline()
    pipe.delete(*keys(run_id)[:2], keys(run_id)[3], beat_key(run_id))
    pipe.set(keys(run_id)[2], b"1", ex=RUN_TTL)
    pipe.execute()

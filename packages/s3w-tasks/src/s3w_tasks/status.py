"""What ``s3w status`` shows, gathered from the broker, Redis and the database.

:func:`gather` returns one JSON-able dict; a source that does not answer in time leaves its
section ``None`` and adds a line to ``problems``, so one dead service never hides the rest.
"""

from __future__ import annotations

from typing import Any

#: The one-off commands whose last run is shown (``summary.publish`` records them).
COMMANDS = ("sync", "migrate", "restore", "audit")
#: Stuck uploads are counted up to this many (then shown as "at least").
STUCK_LIMIT = 10_000
#: Ids of stuck uploads listed.
STUCK_SHOWN = 10


def workers(queues: list[str], timeout: float) -> list[dict[str, Any]]:
    """Workers that answer a ping within ``timeout`` and consume one of ``queues``."""
    from s3w_tasks.fleet.broker import sender_app

    sender = sender_app()
    try:
        replies = sender.control.inspect(timeout=timeout).active_queues() or {}
    finally:
        sender.close()
    found = []
    for name, consumed in sorted(replies.items()):
        names = [q.get("name") for q in consumed or [] if isinstance(q, dict)]
        if set(names) & set(queues):
            found.append({"name": name, "queues": sorted(str(n) for n in names)})
    return found


def task_rates(client: Any) -> dict[str, Any]:
    """Tasks finished (ok or failed) per minute over the last 5 minutes, and outcomes in the
    last 60 minutes (the current minute included in both)."""
    from s3w_tasks.taskstats import OUTCOMES, recent

    minutes = recent(59, client)
    hour = {outcome: sum(m.get(outcome, 0) for m in minutes) for outcome in OUTCOMES}
    finished = sum(m.get("ok", 0) + m.get("failed", 0) for m in minutes[-5:])
    return {"per_minute": round(finished / 5, 1), "last_hour": hour}


def stuck(older_than_minutes: float) -> dict[str, Any]:
    from s3w_tasks.fleet.backfill import stuck_uploads

    count = 0
    shown: list[dict[str, str]] = []
    for batch in stuck_uploads(older_than_minutes * 60):
        for item in batch:
            count += 1
            if len(shown) < STUCK_SHOWN:
                shown.append({"document_id": item.document_id, "status": item.status})
        if count >= STUCK_LIMIT:
            break
    return {
        "older_than_minutes": older_than_minutes,
        "count": count,
        "at_least": count >= STUCK_LIMIT,
        "documents": shown,
    }


def gather(*, stuck_minutes: float = 30, timeout: float = 2.0) -> dict[str, Any]:
    """Every section of the status screen."""
    from s3w_tasks import contract
    from s3w_tasks.errors import describe
    from s3w_tasks.state import broker_errors, database_errors, document_counts, queue_depths

    queues = contract.default_queues()
    report: dict[str, Any] = {
        "deployment": contract.s3_queue(),
        "workers": None,
        "queues": None,
        "tasks": None,
        "documents": None,
        "stuck_uploads": None,
        "last_runs": None,
        "problems": [],
    }
    problems: list[str] = report["problems"]
    try:
        report["workers"] = workers(queues, timeout)
        report["queues"] = queue_depths(queues, timeout)
    except broker_errors() as exc:
        problems.append(f"broker: {describe(exc)}")
    redis_errors = _redis_errors()
    try:
        client = _redis(timeout)
        try:
            report["tasks"] = task_rates(client)
            from s3w_tasks.summary import last_runs

            report["last_runs"] = last_runs(COMMANDS, report["deployment"], client)
        finally:
            client.close()
    except redis_errors as exc:
        problems.append(f"redis (task statistics, last runs): {describe(exc)}")
    try:
        previews, processing = document_counts(timeout)
        report["documents"] = {"preview_status": previews, "processing_status": processing}
        report["stuck_uploads"] = stuck(stuck_minutes)
    except database_errors() as exc:
        problems.append(f"database: {describe(exc)}")
    return report


def _redis(timeout: float) -> Any:
    import redis

    from s3w_tasks.settings import get_settings

    return redis.Redis.from_url(
        get_settings().progress_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    from s3w_tasks.errors import TaskError

    return (redis.RedisError, OSError, TaskError)

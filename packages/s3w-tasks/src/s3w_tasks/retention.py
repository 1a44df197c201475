"""Deleting document versions under object lock: a locked object is recorded as "retained
until <date>" and left to its lock, never failed or retried."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from s3w_storage.lockcheck import retained_until
from s3w_storage.objects import get_storage

if TYPE_CHECKING:
    from s3w_storage.objects import Storage
    from s3w_tasks.audit_result import AuditResult

log = logging.getLogger(__name__)

#: The outcome label a task run gets when it left locked objects in place.
RETAINED = "retained"


def delete_docvers(prefixes: Iterable[str]) -> tuple[int, list[dict[str, str]]]:
    """Delete every object under the folder ``prefixes``, except those an object lock still
    retains (looked up only when ``PM_S3_OBJECT_LOCK_MODE`` is set): (deleted, retained as
    ``{"key", "until"}``). Other delete errors raise, as for any delete."""
    storage = get_storage()
    locked = storage.settings.object_lock_mode is not None
    doomed: list[str] = []
    retained: list[dict[str, str]] = []
    for prefix in prefixes:
        for info in storage.iter_objects(prefix):
            until = retained_until(storage, info.key) if locked else None
            if until is None:
                doomed.append(info.key)
                continue
            retained.append({"key": info.key, "until": _day(until)})
            log.warning(
                "outcome=%s key=%s retained until %s (object lock %s): not deleted",
                RETAINED,
                info.key,
                _day(until),
                storage.settings.object_lock_mode,
                extra={"outcome": RETAINED, "key": info.key, "until": _day(until)},
            )
    result = storage.delete(doomed)
    result.raise_for_errors()
    return result.deleted, retained


def outcome(result: Any) -> str:
    """The metrics outcome of a successful run: ``retained`` when it left locked objects."""
    return RETAINED if isinstance(result, dict) and result.get(RETAINED) else "ok"


def _day(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def sort_orphan(storage: Storage, result: AuditResult, key: str, size: int) -> None:
    """Count an object no document version wants as the audit's orphan, or, while an object
    lock keeps it (``PM_S3_OBJECT_LOCK_MODE`` set), as retained: listed with its date, never
    deleted by ``--delete-orphans``."""
    until = None
    if storage.settings.object_lock_mode is not None:
        until = retained_until(storage, key)
    if until is None:
        result.orphans.add(key, size)
    else:
        result.retained.add(f"{key} (retained until {_day(until)})", size)

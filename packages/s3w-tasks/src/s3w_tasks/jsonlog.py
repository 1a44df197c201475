"""``PM_LOG_FORMAT=json``: one JSON object per log line, for log pipelines.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``process`` and ``message``;
lines logged while a task runs add ``task``, ``task_id`` and the document, version or page
ids of its arguments; a task's outcome line adds ``outcome``, ``duration`` (seconds),
``attempt`` and ``error``; a traceback goes in ``exc``. The text of ``message`` is the same
as in the text format, so nothing that is kept out of the text logs (secrets) gets in here.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from typing import Any

from celery.signals import task_postrun, task_prerun

#: Task arguments copied into the lines logged while the task runs (ids only).
ID_ARGUMENTS = (
    "doc_id",
    "doc_ids",
    "document_id",
    "document_version_id",
    "doc_ver_ids",
    "page_id",
    "page_ids",
)
#: At most this many ids of a list argument are shown.
MAX_IDS = 10
#: Record attributes a task's outcome line carries (passed with ``extra=``).
OUTCOME_FIELDS = ("outcome", "duration", "attempt", "error")

_task: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "s3w_task", default=None
)


def outcome(
    outcome: str,
    *,
    duration: float | None = None,
    error: str | None = None,
    attempt: int | None = None,
) -> dict[str, Any]:
    """The ``extra=`` of a task's outcome line."""
    found: dict[str, Any] = {"outcome": outcome}
    if duration is not None:
        found["duration"] = round(duration, 4)
    if error is not None:
        found["error"] = error
    if attempt is not None:
        found["attempt"] = attempt
    return found


def _ids(kwargs: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in ID_ARGUMENTS:
        value = kwargs.get(name)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            found[name] = [str(v)[:64] for v in value[:MAX_IDS]]
            if len(value) > MAX_IDS:
                found[f"{name}_more"] = len(value) - MAX_IDS
        else:
            found[name] = str(value)[:64]
    return found


@task_prerun.connect  # type: ignore[untyped-decorator]
def _enter(
    task_id: str | None = None, task: Any = None, kwargs: dict[str, Any] | None = None, **_: Any
) -> None:
    _task.set({"task": getattr(task, "name", None), "task_id": task_id, **_ids(kwargs or {})})


@task_postrun.connect  # type: ignore[untyped-decorator]
def _leave(**_: Any) -> None:
    _task.set(None)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line (usable from a ``PM_LOG_CONFIG`` YAML as
    ``(): s3w_tasks.jsonlog.JsonFormatter``)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
        }
        context = _task.get()
        if context:
            data.update({k: v for k, v in context.items() if v is not None})
        for name in OUTCOME_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, ensure_ascii=False, default=str)


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def use_json(root: logging.Logger | None = None) -> None:
    """Give every handler already configured the JSON formatter; route warnings to logging."""
    formatter = JsonFormatter()
    loggers = [root or logging.getLogger()]
    loggers += [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            handler.setFormatter(formatter)
    logging.captureWarnings(True)

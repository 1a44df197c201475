"""The deployment's state as the broker and the database tell it: queue depths, documents.

Documents are counted by status. Read on demand (a metrics scrape, ``s3w status``), cheaply
and with a time limit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("s3w_tasks.state")

#: Sample names :class:`StateCollector` shows.
STATE_FAMILIES = ("s3w_queue_depth", "s3w_documents", "s3w_documents_processing", "s3w_state_up")
#: The label value for a document whose ``preview_status`` is NULL (never rendered).
NO_STATUS = "none"


def queue_depths(queues: list[str], timeout: float) -> dict[str, int]:
    """Messages waiting in each queue, as the broker counts them (Redis: the list lengths,
    every priority included)."""
    from kombu.connection import Connection

    from s3w_tasks.settings import get_settings

    settings = get_settings()
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    depths: dict[str, int] = {}
    with Connection(  # type: ignore[no-untyped-call]
        settings.broker_url, connect_timeout=timeout, transport_options=options
    ) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
        channel = connection.default_channel
        for queue in queues:
            # Declared as the workers declare it (durable), so an unused queue reads as 0.
            declared = channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            depths[queue] = int(declared.message_count)
    return depths


def document_counts(timeout: float) -> tuple[dict[str, int], dict[str, int]]:
    """(documents by ``preview_status``, documents by ``processing_status``); the queries run
    under a ``statement_timeout`` of ``timeout`` seconds."""
    from sqlalchemy import func, select, text

    from s3w_tasks.db import session_scope
    from s3w_tasks.models import Document

    previews: dict[str, int] = {}
    processing: dict[str, int] = {}
    with session_scope() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL statement_timeout = {int(timeout * 1000)}"))
        rows = session.execute(
            select(Document.preview_status, Document.processing_status, func.count()).group_by(
                Document.preview_status, Document.processing_status
            )
        )
        for preview, process, count in rows:
            name = preview.value if preview is not None else NO_STATUS
            previews[name] = previews.get(name, 0) + int(count)
            processing[process.value] = processing.get(process.value, 0) + int(count)
    return previews, processing


def _gauge(name: str, text: str, label: str, values: dict[str, int]) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(name, text, labels=[label])
    for key, count in sorted(values.items()):
        family.add_metric([key], count)
    return family


def _families(depths: dict[str, int] | None, docs: Any, up: dict[str, int]) -> Iterator[Any]:
    if depths is not None:
        yield _gauge(
            "s3w_queue_depth", "Messages waiting in the queue (read on scrape).", "queue", depths
        )
    if docs is not None:
        previews, processing = docs
        yield _gauge(
            "s3w_documents",
            "Documents by preview_status ('none': not rendered yet; read on scrape).",
            "preview_status",
            previews,
        )
        yield _gauge(
            "s3w_documents_processing",
            "Documents by processing_status (read on scrape).",
            "processing_status",
            processing,
        )
    yield _gauge(
        "s3w_state_up",
        "1 when the last read of the source (broker, database) answered in time, else 0.",
        "source",
        up,
    )


class StateCollector:
    """Queue depths and document counts, read when Prometheus scrapes (main process only)."""

    def collect(self) -> Iterator[Any]:
        from s3w_tasks import contract
        from s3w_tasks.settings import get_settings

        settings = get_settings()
        timeout = settings.metrics_state_timeout
        up: dict[str, int] = {}
        depths: dict[str, int] | None = None
        docs = None
        try:
            depths = queue_depths(contract.default_queues(), timeout)
            up["broker"] = 1
        except broker_errors() as exc:  # the scrape goes on without depths
            up["broker"] = 0
            log.warning("metrics: queue depths unavailable: %s", _describe(exc))
        try:
            docs = document_counts(timeout)
            up["database"] = 1
        except database_errors() as exc:  # the scrape goes on without counts
            up["database"] = 0
            log.warning("metrics: document counts unavailable: %s", _describe(exc))
        yield from _families(depths, docs, up)

    def describe(self) -> list[Any]:
        return []  # collected on scrape only; never during registration


def broker_errors() -> tuple[type[BaseException], ...]:
    """What a broker that is down, slow or refusing raises through kombu."""
    from kombu.exceptions import KombuError

    kinds: list[type[BaseException]] = [OSError, KombuError]
    try:
        import redis

        kinds.append(redis.RedisError)
    except ImportError:  # an AMQP-only installation
        pass
    try:
        from amqp.exceptions import AMQPError

        kinds.append(AMQPError)
    except ImportError:  # a Redis-only installation
        pass
    return tuple(kinds)


def database_errors() -> tuple[type[BaseException], ...]:
    """What a database that is down, slow or not configured raises."""
    from sqlalchemy.exc import SQLAlchemyError

    from s3w_tasks.errors import TaskError

    return (SQLAlchemyError, TaskError, OSError)


def _describe(exc: BaseException) -> str:
    from s3w_tasks.errors import describe

    return describe(exc)

"""The broker from the sending side: a producer-only Celery app and the depth of a queue."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def sender_app() -> Any:
    """A producer-only Celery app for the configured broker (JSON, kwargs, no results), so
    that a coordinator never depends on the worker app's cached configuration."""
    from celery import Celery

    from s3w_tasks.settings import get_settings

    sender = Celery("s3w-coordinator", set_as_current=False)
    sender.conf.update(
        broker_url=get_settings().broker_url,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
    )
    return sender


class QueueWatch:
    """One broker connection to send on and to ask how many messages wait in ``queue``."""

    def __init__(self, connection: Any, queue: str) -> None:
        self.connection = connection
        self.queue = queue

    def depth(self) -> int:
        """Messages waiting in the queue (every priority), asked with ``queue_declare``;
        declared as the workers declare it (durable), so it may exist before them."""
        declared = self.connection.default_channel.queue_declare(
            queue=self.queue, durable=True, auto_delete=False
        )
        return int(declared.message_count)

    def depth_or_none(self) -> int | None:
        """:meth:`depth`, or None when the broker cannot be asked just now."""
        try:
            return self.depth()
        except (*self.connection.connection_errors, *self.connection.channel_errors):
            return None


@contextmanager
def watching(sender: Any, queue: str) -> Iterator[QueueWatch]:
    """A :class:`QueueWatch` on a connection of ``sender`` (closed when the block ends)."""
    with sender.connection_for_write() as connection:
        yield QueueWatch(connection, queue)

"""The worker's errors and the one function that says whether an error may pass on a retry."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from s3w_storage.errors import StorageError


class TaskError(Exception):
    """Base of the errors the worker's operations raise; the message says what to do."""

    #: True when running the same task again later may succeed.
    transient: bool = False


class ConfigurationError(TaskError):
    """A worker setting is missing or wrong; the message names the variable."""


class PermanentError(TaskError):
    """Running the task again will not help: bad id, unknown row, missing or corrupt file."""


class NotReady(TaskError):
    """The document is still being processed; the task should run again a little later."""

    transient = True


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may succeed: network, throttling, 5xx, lost database connections."""
    if isinstance(exc, TaskError):
        return exc.transient
    if isinstance(exc, StorageError):
        return exc.transient
    if isinstance(exc, (OperationalError, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, (ConnectionError, TimeoutError))


def describe(exc: BaseException) -> str:
    """One line for logs and ``*_error`` columns: the message, never a URL or a secret.

    Database errors carry the SQL statement and parameters in ``str()``; only the driver's
    first line is kept. Whitespace runs become one space and other control characters are
    escaped, so a name from a message cannot start a new line in a log or a column.
    """
    if isinstance(exc, DBAPIError):
        first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else ""
        return f"database error ({type(exc.orig).__name__}): {first}"[:500]
    from s3w_tasks.logs import clean

    text = str(exc).strip() or type(exc).__name__
    return clean(" ".join(text.split()), 500)

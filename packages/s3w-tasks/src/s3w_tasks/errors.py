"""The worker's errors, the ones it classifies, and whether an error may pass on a retry."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from s3w_storage.errors import StorageError
from s3w_thumbs.errors import ThumbnailError


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


def clean(value: object, limit: int = 300) -> str:
    """``value`` as one log-safe line: control and other unprintable characters escaped
    (``\\n``, ``\\x1b``, ``\\u2028``), at most ``limit`` characters. Ids and names that
    arrive in a message go through this, so a newline in them cannot write a fake log line."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def describe(exc: BaseException) -> str:
    """One line for logs and ``*_error`` columns: the message, never a URL or a secret.

    Database errors carry the SQL statement and parameters in ``str()``; only the driver's
    first line is kept. Whitespace runs become one space and other control characters are
    escaped, so a name from a message cannot start a new line in a log or a column.
    """
    if isinstance(exc, DBAPIError):
        first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else ""
        return f"database error ({type(exc.orig).__name__}): {first}"[:500]
    text = str(exc).strip() or type(exc).__name__
    return clean(" ".join(text.split()), 500)


def reason(exc: BaseException) -> str:
    """:func:`describe`, and for a ``MemoryError`` (which has no message) what happened."""
    if isinstance(exc, MemoryError):
        return (
            "ran out of memory; the file is too large to process "
            "(S3W_MAX_RENDER_PIXELS, S3W_RENDER_MEMORY_LIMIT)"
        )
    return describe(exc)


#: Errors an operation knows how to classify (everything else is a bug and propagates).
KNOWN_ERRORS: tuple[type[BaseException], ...] = (
    TaskError,
    StorageError,
    ThumbnailError,
    SQLAlchemyError,
    OSError,
)

#: Errors recorded on the document as ``failed`` (``MemoryError`` included: a render that
#: ran out of memory must not leave the document pending or converting).
RECORDED_ERRORS: tuple[type[BaseException], ...] = (*KNOWN_ERRORS, MemoryError)

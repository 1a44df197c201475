"""How the CLI speaks: one-line errors (tracebacks with --verbose), JSON, masking of secrets."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer

MASK = "********"


class State:
    """Options of the root callback that every command sees."""

    verbose: bool = False


state = State()


def fail(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def expected_types() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input, configuration or service state: no traceback for these."""
    kinds: list[type[BaseException]] = [OSError, ValueError]
    from s3w_storage.errors import StorageError

    kinds.append(StorageError)
    if "s3w_thumbs" in sys.modules:
        from s3w_thumbs import ThumbnailError

        kinds.append(ThumbnailError)
    if "s3w_tasks.errors" in sys.modules:  # imported by the command that can raise them
        from s3w_tasks.errors import TaskError

        kinds.append(TaskError)
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import SQLAlchemyError

        kinds.append(SQLAlchemyError)
    return tuple(kinds)


@contextlib.contextmanager
def expected_errors() -> Iterator[None]:
    """Turn domain errors into one line on stderr and exit code 1; ``--verbose`` re-raises
    them so the traceback shows."""
    try:
        yield
    except typer.Exit:
        raise
    except expected_types() as exc:
        if state.verbose:
            raise
        fail(one_line(exc))


def one_line(exc: BaseException) -> str:
    if "sqlalchemy" in sys.modules and "s3w_tasks.errors" in sys.modules:
        from s3w_tasks.errors import describe

        return describe(exc)
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def mask_url(url: str | None) -> str | None:
    """``scheme://user:********@host/path``: the password (and any query secrets) hidden."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query and any(k in query.lower() for k in ("password", "secret", "token", "key")):
        query = MASK
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))

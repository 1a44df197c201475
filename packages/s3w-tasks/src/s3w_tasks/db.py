"""The database engine (one per process, built after fork) and a transactional session scope."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session

from s3w_tasks.settings import get_settings


def database_url(raw: str) -> URL:
    """``PM_DB_URL`` with the psycopg2 driver (the core may name ``postgresql+psycopg``)."""
    url = make_url(raw)
    if url.get_backend_name() in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg2")
    return url


class _PerProcessEngine:
    """Builds the engine on first use in each process.

    A Celery prefork child inherits its parent's objects; a pooled connection must never be
    used from two processes. When the pid changes, the inherited engine's pool is dropped
    without closing its connections (closing them would end the parent's sessions) and the
    child builds its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._engine: Engine | None = None
        self._inherited: list[Engine] = []

    def __call__(self) -> Engine:
        pid = os.getpid()
        with self._lock:
            if self._engine is not None and self._pid != pid:
                self._engine.dispose(close=False)
                self._inherited.append(self._engine)  # keep the parent's sockets unclosed
                self._engine = None
            if self._engine is None:
                url = database_url(get_settings().require_db_url())
                self._engine = create_engine(url, **_engine_options(url))
                if url.get_backend_name() == "sqlite":
                    event.listen(self._engine, "connect", _sqlite_functions)
                self._pid = pid
            return self._engine

    def cache_clear(self) -> None:
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = None
            self._pid = None


#: The process's engine from ``PM_DB_URL``; ``get_engine.cache_clear()`` disposes it.
get_engine = _PerProcessEngine()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back on error."""
    session = Session(bind=get_engine(), expire_on_commit=False)
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def _engine_options(url: URL) -> dict[str, Any]:
    """PostgreSQL (production): a small checked pool and libpq timeouts. SQLite (``s3w demo``
    only): SQLAlchemy's defaults."""
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 30}}
    return {
        "pool_pre_ping": True,
        "pool_size": 2,
        "max_overflow": 2,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 10, "application_name": "s3w-worker"},
    }


def _sqlite_functions(connection: Any, _record: Any) -> None:
    """The two PostgreSQL functions the worker's SQL uses, for the demo's SQLite database."""
    import re

    def regexp(pattern: str, value: str | None) -> bool:
        return value is not None and re.search(pattern, value) is not None

    def split_part(value: str | None, sep: str, field: int) -> str | None:
        if value is None:
            return None
        parts = value.split(sep)
        return parts[field - 1] if 0 < field <= len(parts) else ""

    connection.create_function("regexp", 2, regexp, deterministic=True)
    connection.create_function("split_part", 3, split_part, deterministic=True)

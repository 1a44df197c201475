"""The database engine (one per process, built after fork) and a transactional session scope."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import URL, Engine, create_engine, make_url
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
                self._engine = create_engine(
                    database_url(get_settings().require_db_url()),
                    pool_pre_ping=True,
                    pool_size=2,
                    max_overflow=2,
                    pool_recycle=1800,
                    connect_args={"connect_timeout": 10, "application_name": "s3w-worker"},
                )
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

"""The database engine (one per process, built after fork) and a transactional session scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session

from s3w_storage.perprocess import PerProcess
from s3w_tasks.settings import get_settings


def database_url(raw: str) -> URL:
    """``PM_DB_URL`` with the psycopg2 driver (the core may name ``postgresql+psycopg``)."""
    url = make_url(raw)
    if url.get_backend_name() in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg2")
    return url


def _engine_from_environment() -> Engine:
    url = database_url(get_settings().require_db_url())
    engine = create_engine(url, **_engine_options(url))
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_functions)
    return engine


#: Engines a forked child inherited: their pools are dropped, their sockets (the parent's
#: sessions) kept open by keeping them referenced.
_inherited: list[Engine] = []


def _drop_inherited(engine: Engine) -> None:
    """A pooled connection must never be used from two processes: the child drops the pool
    it inherited without closing the connections (that would end the parent's sessions)."""
    engine.dispose(close=False)
    _inherited.append(engine)


#: The process's engine from ``PM_DB_URL``, built after fork; ``get_engine.cache_clear()``
#: disposes it.
get_engine: PerProcess[Engine] = PerProcess(
    _engine_from_environment, on_fork=_drop_inherited, on_clear=lambda engine: engine.dispose()
)


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

"""A stand-in for Papermerge core in tests: its tables, its rows, its key layout, its sender.

Everything here talks to PostgreSQL with plain psycopg2 and builds keys with f-strings, so
it stays an independent oracle for the code under test. Typical use::

    from tests.support import papermerge as pm

    pm.create_schema(pg_url)                      # enum types and the five tables
    user = pm.insert_user(pg_url)
    doc = pm.insert_document(pg_url, user, file_name="a.pdf", page_count=2)
    doc.version.id, doc.version.file_name, doc.version.page_ids
    pm.document_row(pg_url, doc.id)["preview_status"]          # 'ready' | ... | None
    pm.versions(pg_url, doc.id); pm.pages(pg_url, doc.version.id)

    sender = pm.core_app(broker_url)              # Celery('papermerge'), as the core builds it
    sender.send_task("s3_worker_add_doc_vers", kwargs={...}, queue="s3")

``docver_key``/``thumbnail_key``/``page_preview_key`` return Papermerge's keys (with the
``PM_PREFIX`` folder when given); ``media_file`` writes a file where the core keeps it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_SQL = Path(__file__).with_name("papermerge_schema.sql")

PDF = "application/pdf"

#: Task name -> logical queue, as Papermerge core routes them (written out here, so the tests
#: check the contract module against it).
QUEUES = {
    "process_upload": "s3",
    "s3_worker_generate_doc_thumbnail": "s3preview",
    "s3_worker_add_doc_vers": "s3",
    "s3_worker_remove_doc_vers": "s3",
    "s3_worker_remove_doc_thumbnail": "s3",
    "s3_worker_remove_docs_thumbnail": "s3",
    "s3_worker_remove_page_thumbnail": "s3",
    "s3_worker_generate_page_image": "s3preview",
}


# ------------------------------------------------------------------------------ keys


def _shard(root: str, ident: str | uuid.UUID, prefix: str) -> str:
    i = str(ident)
    key = f"{root}/{i[0:2]}/{i[2:4]}/{i}"
    return f"{prefix}/{key}" if prefix else key


def docver_key(version_id: str | uuid.UUID, file_name: str, prefix: str = "") -> str:
    return f"{_shard('docvers', version_id, prefix)}/{file_name}"


def thumbnail_key(doc_id: str | uuid.UUID, prefix: str = "") -> str:
    return f"{_shard('thumbnails/jpg', doc_id, prefix)}/sm.jpg"


def page_preview_key(page_id: str | uuid.UUID, size: str, prefix: str = "") -> str:
    return f"{_shard('previews/pages', page_id, prefix)}/{size}.jpg"


def legacy_page_key(page_id: str | uuid.UUID, name: str, prefix: str = "") -> str:
    return f"{_shard('thumbnails/jpg', page_id, prefix)}/{name}"


def media_file(media_root: Path, version: Version, data: bytes) -> Path:
    """Write ``data`` where the core keeps the version's file under the media root."""
    path = media_root / docver_key(version.id, version.file_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -------------------------------------------------------------------------- database


@contextmanager
def connect(db_url: str) -> Iterator[Any]:
    """A psycopg2 connection in one transaction (committed on success), closed afterwards."""
    import psycopg2

    with closing(psycopg2.connect(db_url)) as conn, conn:
        yield conn


def execute(db_url: str, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> None:
    with connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)


def create_schema(db_url: str) -> None:
    """Create the Papermerge enum types and tables in an empty database."""
    execute(db_url, SCHEMA_SQL.read_text())


def _now() -> datetime:
    return datetime.now(UTC)


def insert_user(db_url: str, username: str | None = None) -> uuid.UUID:
    user_id = uuid.uuid4()
    name = username or f"user-{user_id.hex[:8]}"
    now = _now()
    execute(
        db_url,
        """INSERT INTO users (id, username, email, password, is_superuser, is_staff, is_active,
                              created_at, updated_at, date_joined)
           VALUES (%s, %s, %s, 'x', false, false, true, %s, %s, %s)""",
        (str(user_id), name, f"{name}@example.org", now, now, now.replace(tzinfo=None)),
    )
    return user_id


@dataclass
class Version:
    id: uuid.UUID
    number: int
    file_name: str
    mime_type: str
    page_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class Doc:
    id: uuid.UUID
    user_id: uuid.UUID
    versions: list[Version]

    @property
    def version(self) -> Version:
        """The last version."""
        return self.versions[-1]


def insert_document(
    db_url: str,
    user_id: uuid.UUID,
    *,
    file_name: str = "document.pdf",
    mime_type: str = PDF,
    page_count: int = 1,
    lang: str = "deu",
    processing_status: str = "ready",
    preview_status: str | None = None,
    size: int = 0,
) -> Doc:
    """A document node with version 1 and ``page_count`` pages (0 = no pages, as after an
    upload before ``process_upload``)."""
    doc_id = uuid.uuid4()
    now = _now()
    with connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(
            """INSERT INTO nodes (id, title, ctype, lang, created_at, updated_at, created_by,
                                  updated_by)
               VALUES (%s, %s, 'document', %s, %s, %s, %s, %s)""",
            (str(doc_id), file_name, lang, now, now, str(user_id), str(user_id)),
        )
        cur.execute(
            """INSERT INTO documents (node_id, ocr, ocr_status, preview_status, processing_status)
               VALUES (%s, false, 'unknown', %s, %s)""",
            (str(doc_id), preview_status, processing_status),
        )
    doc = Doc(id=doc_id, user_id=user_id, versions=[])
    add_version(
        db_url, doc, file_name=file_name, mime_type=mime_type, page_count=page_count, size=size
    )
    return doc


def add_version(
    db_url: str,
    doc: Doc,
    *,
    file_name: str = "document.pdf",
    mime_type: str = PDF,
    page_count: int = 1,
    size: int = 0,
    lang: str = "deu",
) -> Version:
    """Append version ``number = last + 1`` with ``page_count`` pages to ``doc``."""
    version = Version(
        id=uuid.uuid4(),
        number=len(doc.versions) + 1,
        file_name=file_name,
        mime_type=mime_type,
        page_ids=[uuid.uuid4() for _ in range(page_count)],
    )
    now = _now()
    with connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(
            """INSERT INTO document_versions (id, number, file_name, document_id, lang, size,
                   page_count, created_at, updated_at, created_by, updated_by, mime_type,
                   is_original)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                str(version.id),
                version.number,
                file_name,
                str(doc.id),
                lang,
                size,
                page_count,
                now,
                now,
                str(doc.user_id),
                str(doc.user_id),
                mime_type,
                version.number == 1,
            ),
        )
        for number, page_id in enumerate(version.page_ids, start=1):
            cur.execute(
                """INSERT INTO pages (id, number, page_count, lang, document_version_id)
                   VALUES (%s, %s, %s, %s, %s)""",
                (str(page_id), number, page_count, lang, str(version.id)),
            )
    doc.versions.append(version)
    return version


def _rows(db_url: str, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    from psycopg2.extras import RealDictCursor

    with connect(db_url) as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(sql, params)
        return [dict(row) for row in cur.fetchall()]


def document_row(db_url: str, doc_id: uuid.UUID | str) -> dict[str, Any]:
    """The ``documents`` row (enum columns read back as their text labels)."""
    rows = _rows(
        db_url,
        """SELECT node_id, preview_status::text AS preview_status, preview_error,
                  processing_status::text AS processing_status, processing_error
           FROM documents WHERE node_id = %s""",
        (str(doc_id),),
    )
    if not rows:
        raise LookupError(f"no document {doc_id}")
    return rows[0]


def versions(db_url: str, doc_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """Every ``document_versions`` row of a document, by number."""
    return _rows(
        db_url,
        "SELECT * FROM document_versions WHERE document_id = %s ORDER BY number",
        (str(doc_id),),
    )


def pages(db_url: str, version_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """Every ``pages`` row of a version, by number."""
    return _rows(
        db_url,
        "SELECT * FROM pages WHERE document_version_id = %s ORDER BY number",
        (str(version_id),),
    )


def set_preview(
    db_url: str, doc_id: uuid.UUID | str, status: str | None, error: str | None = None
) -> None:
    execute(
        db_url,
        "UPDATE documents SET preview_status = %s, preview_error = %s WHERE node_id = %s",
        (status, error, str(doc_id)),
    )


# ---------------------------------------------------------------------------- sender


def core_app(broker_url: str) -> Any:
    """A Celery app configured like Papermerge core's: named ``papermerge``, JSON, no results."""
    from celery import Celery

    app = Celery("papermerge", broker=broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
    )
    return app

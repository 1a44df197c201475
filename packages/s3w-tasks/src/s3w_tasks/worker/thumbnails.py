"""Document thumbnails: the claim protocol (per-dialect SQL), the render, the delete.

A worker claims a document's thumbnail with one conditional UPDATE that marks it ``pending``
(``preview_error`` holds ``s3w-claim <epoch> <token>``), renders page 1 of the last version,
and finishes (``ready``) or fails (``failed``) only over its own claim.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import ColumnElement, TextClause, and_, bindparam, select, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Session

from s3w_storage.keys import docver_key, thumbnail_key, thumbnail_prefix
from s3w_storage.objects import get_storage
from s3w_tasks.db import session_scope
from s3w_tasks.errors import RECORDED_ERRORS, NotReady, PermanentError, is_transient, reason
from s3w_tasks.models import Document, DocumentVersion, PreviewStatus, ProcessingStatus
from s3w_tasks.settings import get_settings
from s3w_tasks.worker.files import delete_prefixes, ensure_local
from s3w_tasks.worker.ids import parse_id, refuse, split_ids

_CLAIM_SQL = """
    UPDATE documents SET preview_status = 'pending', preview_error = :marker
    WHERE node_id = :doc_id AND processing_status = 'ready' AND (
        preview_status IS NULL OR preview_status = 'failed' OR (
            preview_status = 'pending' AND CASE
                WHEN preview_error {matches} '^s3w-claim [0-9]{{1,15}} [^ ]+$' THEN
                    CAST(split_part(preview_error, ' ', 2) AS bigint) < :stale_before
                    OR split_part(preview_error, ' ', 3) = :token
                ELSE true
            END
        )
    )
    RETURNING node_id
    """


def _on_document(sql: str) -> TextClause:
    """``sql`` with ``:doc_id`` bound as the UUID columns are (native on PostgreSQL, hex on the
    demo's SQLite)."""
    return text(sql).bindparams(bindparam("doc_id", type_=UUID(as_uuid=True)))


#: The claim per database dialect: PostgreSQL, and SQLite for ``s3w demo`` (which has
#: ``regexp`` and ``split_part`` from :mod:`s3w_tasks.db`).
_CLAIM = {
    "postgresql": _on_document(_CLAIM_SQL.format(matches="~")),
    "sqlite": _on_document(_CLAIM_SQL.format(matches="REGEXP")),
}

_MINE = (
    "node_id = :doc_id AND preview_status = 'pending'"
    " AND split_part(preview_error, ' ', 1) = 's3w-claim'"
    " AND split_part(preview_error, ' ', 3) = :token"
)


def claim_marker(token: str, at: float | None = None) -> str:
    """What ``preview_error`` holds while a worker renders: ``s3w-claim <epoch> <token>``.

    The core reads only ``preview_status``; the marker lets a retry or redelivery of the same
    task (same token) take its own claim back, and anyone take a claim older than
    ``S3W_PREVIEW_PENDING_STALE_AFTER`` seconds.
    """
    if not token or " " in token:
        raise ValueError("a claim token is one word")
    return f"s3w-claim {int(time.time() if at is None else at)} {token}"


def claim_thumbnail(doc_id: str, token: str) -> bool:
    """Set ``pending`` with one conditional UPDATE; True when this caller holds the claim."""
    stale_before = int(time.time()) - get_settings().preview_pending_stale_after
    with session_scope() as session:
        row = session.execute(
            _CLAIM[session.get_bind().dialect.name],
            {
                "doc_id": uuid.UUID(doc_id),
                "marker": claim_marker(token),
                "stale_before": stale_before,
                "token": token,
            },
        ).first()
    return row is not None


def fail_thumbnail(doc_id: str, message: str, token: str | None = None) -> bool:
    """Record ``failed`` + ``preview_error`` (only over this caller's claim when a token is
    given); True when the row changed."""
    params: dict[str, Any] = {"doc_id": uuid.UUID(doc_id), "error": message[:1000]}
    if token is None:
        where = "node_id = :doc_id AND (preview_status IS NULL OR preview_status <> 'ready')"
    else:
        where, params["token"] = _MINE, token
    with session_scope() as session:
        row = session.execute(
            _on_document(
                f"UPDATE documents SET preview_status = 'failed', preview_error = :error "  # noqa: S608 - fixed clauses
                f"WHERE {where} RETURNING node_id"
            ),
            params,
        ).first()
    return row is not None


def _finish_thumbnail(doc_id: str, token: str) -> bool:
    with session_scope() as session:
        row = session.execute(
            _on_document(
                "UPDATE documents SET preview_status = 'ready', preview_error = NULL "  # noqa: S608 - fixed clauses
                f"WHERE {_MINE} RETURNING node_id"
            ),
            {"doc_id": uuid.UUID(doc_id), "token": token},
        ).first()
    return row is not None


def _last_version(session: Session, doc_id: str) -> tuple[str, str | None] | None:
    row = session.execute(
        select(DocumentVersion.id, DocumentVersion.file_name)
        .where(DocumentVersion.document_id == uuid.UUID(doc_id))
        .order_by(DocumentVersion.number.desc())
        .limit(1)
    ).first()
    return (str(row.id), row.file_name) if row is not None else None


def generate_doc_thumbnail(
    doc_id: Any, *, token: str | None = None, last_attempt: bool = True
) -> str:
    """Render page 1 of the last version to ``thumbnails/jpg/.../sm.jpg``; return the status.

    Returns ``"ready"`` when this call rendered it, otherwise the status it found (``ready``,
    ``pending`` while another worker holds a fresh claim, ``failed``) or ``"superseded"`` when
    a new version reset the status mid-render. Raises :class:`NotReady` while the document is
    still being processed. A transient error keeps the claim for the retry (same ``token``)
    unless ``last_attempt``; every other error records ``failed`` and raises.
    """
    ident = parse_id(doc_id, "document id")
    token = token or uuid.uuid4().hex
    if not claim_thumbnail(ident, token):
        status = _unclaimed_status(ident)
        # "unclaimed" = ready with no preview status: processing finished between the claim
        # and the read (process_upload committing), so the claim can be taken now.
        if status != "unclaimed" or not claim_thumbnail(ident, token):
            return status
    storage = get_storage()
    try:
        from s3w_thumbs import render_thumbnail

        with session_scope() as session:
            version = _last_version(session, ident)
        if version is None or not version[1]:
            raise PermanentError(f"document {ident} has no version with a file to render")
        path = ensure_local(storage, docver_key(version[0], version[1]))
        jpeg = render_thumbnail(path)
        storage.upload_bytes(jpeg, thumbnail_key(ident), content_type="image/jpeg")
    except RECORDED_ERRORS as exc:
        if is_transient(exc) and not last_attempt:
            raise
        fail_thumbnail(ident, reason(exc), token)
        if isinstance(exc, PermanentError) or is_transient(exc):
            raise
        raise PermanentError(f"thumbnail of document {ident}: {reason(exc)}") from exc
    return "ready" if _finish_thumbnail(ident, token) else "superseded"


def _unclaimed_status(ident: str) -> str:
    with session_scope() as session:
        row = session.execute(
            select(Document.preview_status, Document.processing_status).where(
                Document.node_id == uuid.UUID(ident)
            )
        ).first()
    if row is None:
        raise PermanentError(f"no document with id {ident}")
    if row.processing_status == ProcessingStatus.FAILED:
        fail_thumbnail(ident, "the document's upload processing failed; nothing to render")
        return PreviewStatus.FAILED.value
    if row.processing_status != ProcessingStatus.READY:
        raise NotReady(f"document {ident} is still {row.processing_status.value}")
    return row.preview_status.value if row.preview_status is not None else "unclaimed"


def needs_thumbnail() -> ColumnElement[bool]:
    """The rule for a document that needs a thumbnail: processing done, thumbnail missing or
    failed (used here and by the backfill)."""
    return and_(
        Document.preview_status.is_(None) | (Document.preview_status == PreviewStatus.FAILED),
        Document.processing_status == ProcessingStatus.READY,
    )


def documents_to_thumbnail(limit: int | None = None) -> list[uuid.UUID]:
    """The first ``limit`` (all) documents, in id order, that need a thumbnail."""
    query = select(Document.node_id).where(needs_thumbnail()).order_by(Document.node_id)
    if limit is not None:
        query = query.limit(limit)
    with session_scope() as session:
        return list(session.scalars(query))


def remove_doc_thumbnails(doc_ids: Any) -> dict[str, Any]:
    """Delete each document's thumbnail folder (``thumbnails/jpg/.../<doc_id>/``)."""
    ids, malformed = split_ids(doc_ids, "document id")
    deleted = delete_prefixes(thumbnail_prefix(i) for i in ids)
    refuse(malformed)
    return {"documents": len(ids), "deleted": deleted}

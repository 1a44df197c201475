"""Upload processing: a PDF's pages counted, an image converted to a PDF version, then ``ready``."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from s3w_storage.keys import docver_key, media_path
from s3w_storage.objects import get_storage
from s3w_tasks.db import session_scope
from s3w_tasks.errors import RECORDED_ERRORS, PermanentError, is_transient, reason
from s3w_tasks.models import Document, DocumentVersion, Page, ProcessingStatus
from s3w_tasks.worker.files import ensure_local
from s3w_tasks.worker.ids import parse_id

#: Namespace for the id of the PDF version made from an uploaded image: the same upload
#: always converts to the same version id, so a second delivery finds the first one's work.
CONVERSION_NAMESPACE = uuid.UUID("9b0f3c52-8c3e-4a55-9d1e-3f4b1f1c7a10")

IMAGE_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/tiff": "tiff"}
PDF_TYPE = "application/pdf"


def normalize_lang(lang: Any) -> str | None:
    """``"DocumentLang.deu"`` (how the core sends an enum) -> ``"deu"``; blanks -> None."""
    if lang is None:
        return None
    value = str(lang).strip()
    value = value.rsplit(".", 1)[-1] if value.startswith("DocumentLang.") else value
    return value[:8] or None


def fail_upload(document_id: Any, message: str) -> bool:
    """Record ``processing_status='failed'`` and the message (unless it is already ready)."""
    ident = parse_id(document_id, "document id")
    with session_scope() as session:
        result = session.execute(
            update(Document)
            .where(
                Document.node_id == uuid.UUID(ident),
                Document.processing_status != ProcessingStatus.READY,
            )
            .values(processing_status=ProcessingStatus.FAILED, processing_error=message[:1000])
        )
        return bool(getattr(result, "rowcount", 0))


def _set_processing(ident: str, status: ProcessingStatus) -> ProcessingStatus | None:
    """Move an unfinished document to ``status``; return what the row says now (None: absent)."""
    unfinished = (
        ProcessingStatus.UPLOADED,
        ProcessingStatus.CONVERTING,
        ProcessingStatus.PROCESSING_PAGES,
    )
    with session_scope() as session:
        changed = session.execute(
            update(Document)
            .where(Document.node_id == uuid.UUID(ident), Document.processing_status.in_(unfinished))
            .values(processing_status=status, processing_error=None)
            .returning(Document.node_id)
        ).first()
        if changed is not None:
            return status
        return session.scalar(
            select(Document.processing_status).where(Document.node_id == uuid.UUID(ident))
        )


def _ensure_pages(session: Session, version_id: uuid.UUID, count: int, lang: str) -> int:
    """Pages 1..count for a version (kept when already complete); returns pages inserted."""
    numbers = sorted(
        session.scalars(select(Page.number).where(Page.document_version_id == version_id))
    )
    if numbers == list(range(1, count + 1)):
        return 0
    if numbers:
        session.execute(delete(Page).where(Page.document_version_id == version_id))
    session.add_all(
        Page(id=uuid.uuid4(), number=n, page_count=count, lang=lang, document_version_id=version_id)
        for n in range(1, count + 1)
    )
    return count


def process_upload(
    document_id: Any,
    document_version_id: Any,
    lang: Any = None,
    user_id: Any = None,
    *,
    last_attempt: bool = True,
) -> dict[str, Any]:
    """Post-upload processing (PDF: pages; image: a PDF version and pages), then ``ready``.

    Idempotent: a document already ``ready`` (or ``failed``) is left as it is, and a second
    run over a half-finished one completes it without duplicating versions or pages. On a
    permanent error (or a transient one on the last attempt) the document is marked
    ``failed`` with a ``processing_error`` a person can act on, and the error is raised.
    """
    doc = parse_id(document_id, "document id")
    ver = parse_id(document_version_id, "document version id")
    try:
        return _process_upload(doc, ver, normalize_lang(lang), user_id)
    except RECORDED_ERRORS as exc:
        if is_transient(exc) and not last_attempt:
            raise
        fail_upload(doc, reason(exc))
        if isinstance(exc, PermanentError) or is_transient(exc):
            raise
        raise PermanentError(f"processing document {doc}: {reason(exc)}") from exc


def _process_upload(doc: str, ver: str, lang: str | None, user_id: Any) -> dict[str, Any]:
    with session_scope() as session:
        version = session.get(DocumentVersion, uuid.UUID(ver))
        if version is None or str(version.document_id) != doc:
            raise PermanentError(f"no version {ver} of document {doc}")
        mime, file_name = version.mime_type, version.file_name
        lang = version.lang or lang or "eng"
    if not file_name:
        raise PermanentError(f"version {ver} has no file name")
    kind = IMAGE_TYPES.get(mime.split(";")[0].strip().lower())
    if kind is None and mime.split(";")[0].strip().lower() != PDF_TYPE:
        raise PermanentError(f"cannot process {mime!r} uploads; expected a PDF, JPEG, PNG or TIFF")
    target = ProcessingStatus.CONVERTING if kind else ProcessingStatus.PROCESSING_PAGES
    status = _set_processing(doc, target)
    if status is None:
        raise PermanentError(f"no document with id {doc}")
    if status in (ProcessingStatus.READY, ProcessingStatus.FAILED):
        return {"document_id": doc, "status": status.value, "skipped": True}
    storage = get_storage()
    source = ensure_local(storage, docver_key(ver, file_name))
    if kind is None:
        return _process_pdf(doc, ver, source, lang)
    return _process_image(doc, ver, source, file_name, kind, lang, user_id)


def _finish(session: Session, doc: str) -> None:
    session.execute(
        update(Document)
        .where(Document.node_id == uuid.UUID(doc))
        .values(processing_status=ProcessingStatus.READY, processing_error=None)
    )


def _process_pdf(doc: str, ver: str, source: Path, lang: str) -> dict[str, Any]:
    from s3w_thumbs import page_count

    count = page_count(source)
    size = source.stat().st_size
    with session_scope() as session:
        version = session.get(DocumentVersion, uuid.UUID(ver), with_for_update=True)
        if version is None:
            raise PermanentError(f"version {ver} was deleted while it was being processed")
        version.size, version.page_count = size, count
        inserted = _ensure_pages(session, version.id, count, lang)
        _finish(session, doc)
    return {"document_id": doc, "status": "ready", "pages": count, "pages_inserted": inserted}


def _process_image(
    doc: str, ver: str, source: Path, file_name: str, kind: str, lang: str, user_id: Any
) -> dict[str, Any]:
    from s3w_thumbs import image_to_pdf

    pdf_name = f"{file_name}.pdf"
    new_id = uuid.uuid5(CONVERSION_NAMESPACE, f"conversion:{ver}")
    key = docver_key(new_id, pdf_name)
    storage = get_storage()
    target = media_path(storage.settings.media_root, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = image_to_pdf(source, target)
    storage.upload_file(target, key, content_type=PDF_TYPE)
    try:
        actor: uuid.UUID | None = uuid.UUID(str(user_id)) if user_id else None
    except ValueError:
        actor = None
    with session_scope() as session:
        original = session.get(DocumentVersion, uuid.UUID(ver), with_for_update=True)
        if original is None:
            raise PermanentError(f"version {ver} was deleted while it was being processed")
        original.size, original.page_count = source.stat().st_size, count
        converted = session.get(DocumentVersion, new_id)
        if converted is None:
            last = session.scalar(
                select(func.max(DocumentVersion.number)).where(
                    DocumentVersion.document_id == uuid.UUID(doc)
                )
            )
            now = datetime.now(UTC)
            converted = DocumentVersion(
                id=new_id,
                number=(last or 0) + 1,
                file_name=pdf_name,
                document_id=uuid.UUID(doc),
                lang=lang,
                size=os.path.getsize(target),
                page_count=count,
                short_description=f"{kind} -> pdf",
                created_at=now,
                updated_at=now,
                created_by=actor or original.created_by,
                updated_by=actor or original.updated_by,
                mime_type=PDF_TYPE,
                is_original=False,
                source_version_id=original.id,
                creation_reason="conversion",
            )
            session.add(converted)
            session.flush()
        else:
            converted.size, converted.page_count = os.path.getsize(target), count
        inserted = _ensure_pages(session, original.id, count, lang)
        inserted += _ensure_pages(session, converted.id, count, lang)
        _finish(session, doc)
    return {
        "document_id": doc,
        "status": "ready",
        "pages": count,
        "pages_inserted": inserted,
        "conversion_version_id": str(new_id),
    }

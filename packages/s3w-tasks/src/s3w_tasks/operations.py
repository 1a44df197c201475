"""What each task does, as plain functions that run without Celery (the CLI calls them too).

Each function takes ids as UUIDs or strings, is idempotent, and returns a small JSON-able
summary (no secrets, no URLs). Errors: :class:`~s3w_tasks.errors.PermanentError` when running
again will not help, storage/database errors as raised (``is_transient`` tells them apart).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import TextClause, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from s3w_storage.errors import InvalidArgument, InvalidKey, ObjectNotFound, StorageError
from s3w_storage.keys import (
    canonical_id,
    docver_key,
    docver_prefix,
    legacy_page_thumbnail_prefix,
    media_path,
    page_preview_key,
    page_preview_prefix,
    thumbnail_key,
    thumbnail_prefix,
)
from s3w_storage.objects import Storage, get_storage
from s3w_tasks.db import session_scope
from s3w_tasks.errors import NotReady, PermanentError, TaskError, describe, is_transient
from s3w_tasks.models import (
    Document,
    DocumentVersion,
    Page,
    PreviewStatus,
    ProcessingStatus,
)
from s3w_tasks.settings import get_settings
from s3w_thumbs.errors import ThumbnailError

log = logging.getLogger(__name__)

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

#: Namespace for the id of the PDF version made from an uploaded image: the same upload
#: always converts to the same version id, so a second delivery finds the first one's work.
CONVERSION_NAMESPACE = uuid.UUID("9b0f3c52-8c3e-4a55-9d1e-3f4b1f1c7a10")

IMAGE_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/tiff": "tiff"}
PDF_TYPE = "application/pdf"

# --------------------------------------------------------------------------- helpers


def parse_ids(values: Any, what: str) -> list[str]:
    """Canonical UUID strings from one id or a list of them, duplicates dropped, order kept."""
    ids, malformed = split_ids(values, what)
    if malformed:
        raise PermanentError(malformed[0])
    return ids


def split_ids(values: Any, what: str) -> tuple[list[str], list[str]]:
    """Like :func:`parse_ids`, but malformed items come back as messages (at most five and a
    count) instead of raising, so a batch can do its valid ids and then report the rest."""
    if values is None:
        raise PermanentError(f"no {what} given")
    items = [values] if isinstance(values, (str, uuid.UUID)) else list(values)
    parsed, malformed = [], []
    for item in items:
        try:
            parsed.append(canonical_id(item))
        except InvalidKey:
            malformed.append(f"{str(item)[:80]!r} is not a valid {what} (expected a UUID)")
    if len(malformed) > 5:
        malformed = [*malformed[:5], f"... ({len(malformed)} malformed ids in all)"]
    return list(dict.fromkeys(parsed)), malformed


def _refuse(problems: list[str]) -> None:
    """Raise one PermanentError listing the batch's problems (after its good ids are done)."""
    if problems:
        raise PermanentError("; ".join(problems))


def parse_id(value: Any, what: str) -> str:
    if isinstance(value, (list, tuple)):
        raise PermanentError(f"expected one {what}, got a list")
    return parse_ids(value, what)[0]


def symlink_in(media_root: str | os.PathLike[str], path: Path) -> str | None:
    """Why ``path`` may not be used when a part of it below the media root is a symbolic
    link (None when none is). The policy for every path s3w reads or writes in the media
    root: links are never followed (``s3w sync`` skips and counts them; docs/security.md)."""
    root = Path(media_root)
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            where = current.relative_to(root).as_posix()
            return f"{where} is a symbolic link; s3w never follows links in the media root"
    return None


def ensure_local(storage: Storage, key: str) -> Path:
    """The media-root file for ``key``; downloaded atomically when it is not there yet."""
    path = media_path(storage.settings.media_root, key)
    if (why := symlink_in(storage.settings.media_root, path)) is not None:
        raise PermanentError(why)
    if path.is_file():
        return path
    try:
        return storage.download_file(key, path)
    except ObjectNotFound:
        raise PermanentError(
            f"{key} is neither in the media root ({path}) nor in the bucket"
        ) from None


def reason(exc: BaseException) -> str:
    """:func:`describe`, and for a ``MemoryError`` (which has no message) what happened."""
    if isinstance(exc, MemoryError):
        return (
            "ran out of memory; the file is too large to process "
            "(S3W_MAX_RENDER_PIXELS, S3W_RENDER_MEMORY_LIMIT)"
        )
    return describe(exc)


def _now() -> datetime:
    return datetime.now(UTC)


def _short(ids: list[str], limit: int = 5) -> str:
    head = ",".join(ids[:limit])
    return head + (f",... ({len(ids)} in all)" if len(ids) > limit else "")


# ------------------------------------------------------------------- document versions


def add_doc_vers(doc_ver_ids: Any) -> dict[str, Any]:
    """Upload each version's file (``document_versions.file_name``) from the media root.

    A missing local file whose object is already in the bucket counts as done. After a
    document's last version is uploaded its ``preview_status`` is reset to NULL, so the core
    asks for a new thumbnail. One database transaction per call (read, then the reset).
    """
    ids, problems = split_ids(doc_ver_ids, "document version id")
    storage = get_storage()
    uploaded: list[str] = []
    present: list[str] = []
    with session_scope() as session:
        rows = session.execute(
            select(DocumentVersion.id, DocumentVersion.file_name).where(
                DocumentVersion.id.in_([uuid.UUID(i) for i in ids])
            )
        ).all()
        found = {str(row.id): row.file_name for row in rows}
        unknown = [i for i in ids if i not in found]
        for ident in ids:
            if ident in unknown:
                continue
            file_name = found[ident]
            if not file_name:
                problems.append(f"version {ident} has no file name")
                continue
            try:
                key = docver_key(ident, file_name)
            except InvalidKey as exc:  # a file name with '/' or '..' from the database
                problems.append(f"version {ident}: {exc}")
                continue
            path = media_path(storage.settings.media_root, key)
            if (why := symlink_in(storage.settings.media_root, path)) is not None:
                problems.append(f"version {ident}: {why}")
                continue
            try:
                storage.upload_file(path, key)
            except FileNotFoundError:
                if storage.exists(key):
                    present.append(ident)
                else:
                    problems.append(f"{path} is missing and {key} is not in the bucket")
                continue
            except (InvalidArgument, OSError) as exc:  # a directory, FIFO, symlink loop, ...
                problems.append(f"version {ident}: {describe(exc)}")
                continue
            uploaded.append(ident)
        reset = _reset_previews(session, uploaded) if uploaded else 0
    if unknown:
        problems.append(f"no document version with id {_short(unknown)}")
    _refuse(problems)
    return {"uploaded": len(uploaded), "already_present": len(present), "previews_reset": reset}


_RESET_PREVIEWS = text(
    """
    UPDATE documents SET preview_status = NULL, preview_error = NULL
    WHERE preview_status IS NOT NULL AND node_id IN (
        SELECT v.document_id FROM document_versions v
        WHERE v.id = ANY(:ids) AND v.number = (
            SELECT max(w.number) FROM document_versions w WHERE w.document_id = v.document_id
        )
    )
    """
)


def _reset_previews(session: Session, doc_ver_ids: Iterable[str]) -> int:
    result = session.execute(_RESET_PREVIEWS, {"ids": [uuid.UUID(i) for i in doc_ver_ids]})
    return int(getattr(result, "rowcount", 0) or 0)


def reset_previews_for_versions(doc_ver_ids: Iterable[str]) -> int:
    """Set ``preview_status`` to NULL for documents whose last version is among these."""
    with session_scope() as session:
        return _reset_previews(session, doc_ver_ids)


def _delete_prefixes(prefixes: Iterable[str]) -> int:
    """Delete everything under each folder prefix; keys are batched 1,000 to a request."""
    storage = get_storage()

    def keys() -> Iterable[str]:
        for prefix in prefixes:
            for info in storage.iter_objects(prefix):
                yield info.key

    result = storage.delete(keys())
    result.raise_for_errors()
    return result.deleted


def remove_doc_vers(doc_ver_ids: Any) -> dict[str, Any]:
    """Delete every object under each version's ``docvers/.../<id>/`` folder."""
    from s3w_tasks.retention import delete_docvers

    ids, malformed = split_ids(doc_ver_ids, "document version id")
    deleted, retained = delete_docvers(docver_prefix(i) for i in ids)  # locks are kept
    _refuse(malformed)
    return {
        "versions": len(ids),
        "deleted": deleted,
        **({"retained": retained} if retained else {}),
    }


def remove_doc_thumbnails(doc_ids: Any) -> dict[str, Any]:
    """Delete each document's thumbnail folder (``thumbnails/jpg/.../<doc_id>/``)."""
    ids, malformed = split_ids(doc_ids, "document id")
    deleted = _delete_prefixes(thumbnail_prefix(i) for i in ids)
    _refuse(malformed)
    return {"documents": len(ids), "deleted": deleted}


def remove_page_thumbnails(page_ids: Any) -> dict[str, Any]:
    """Delete each page's previews (``previews/pages/``) and legacy ``thumbnails/jpg/`` images."""
    ids, malformed = split_ids(page_ids, "page id")
    prefixes = [p for i in ids for p in (page_preview_prefix(i), legacy_page_thumbnail_prefix(i))]
    deleted = _delete_prefixes(prefixes)
    _refuse(malformed)
    return {"pages": len(ids), "deleted": deleted}


# ------------------------------------------------------------------ document thumbnail

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


def documents_needing_thumbnail(limit: int | None = None) -> list[uuid.UUID]:
    """Documents whose thumbnail is missing or failed and whose processing is done."""
    query = (
        select(Document.node_id)
        .where(
            (Document.preview_status.is_(None)) | (Document.preview_status == PreviewStatus.FAILED),
            Document.processing_status == ProcessingStatus.READY,
        )
        .order_by(Document.node_id)
    )
    if limit is not None:
        query = query.limit(limit)
    with session_scope() as session:
        return list(session.scalars(query))


# ------------------------------------------------------------------------ page images


def generate_page_images(page_ids: Any) -> dict[str, Any]:
    """Render each page once and upload it at every preview size (sm/md/lg/xl)."""
    from s3w_thumbs import render_page_previews

    ids, problems = split_ids(page_ids, "page id")
    storage = get_storage()
    with session_scope() as session:
        rows = session.execute(
            select(Page.id, Page.number, DocumentVersion.id.label("ver"), DocumentVersion.file_name)
            .join(DocumentVersion, Page.document_version_id == DocumentVersion.id)
            .where(Page.id.in_([uuid.UUID(i) for i in ids]))
        ).all()
    found = {str(r.id): r for r in rows}
    unknown = [i for i in ids if i not in found]
    if unknown:
        problems.append(f"no page with id {_short(unknown)}")
    rendered = uploaded = 0
    for ident in ids:
        row = found.get(ident)
        if row is None:
            continue
        if not row.file_name:
            problems.append(f"page {ident}: its version {row.ver} has no file name")
            continue
        try:
            path = ensure_local(storage, docver_key(row.ver, row.file_name))
            images = render_page_previews(path, row.number)
        except (PermanentError, ThumbnailError, InvalidKey, OSError, MemoryError) as exc:
            # One bad page is reported; the rest of the batch is still rendered.
            problems.append(f"page {ident}: {reason(exc)}")
            continue
        rendered += 1
        for size, jpeg in images.items():
            storage.upload_bytes(jpeg, page_preview_key(ident, size), content_type="image/jpeg")
            uploaded += 1
    _refuse(problems)
    return {"pages": rendered, "uploaded": uploaded}


# --------------------------------------------------------------------- process upload


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
            now = _now()
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

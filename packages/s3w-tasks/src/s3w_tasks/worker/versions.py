"""Document versions: each version's file uploaded from the media root, or its folder deleted."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from s3w_storage.errors import InvalidArgument, InvalidKey
from s3w_storage.keys import docver_key, docver_prefix, media_path
from s3w_storage.objects import get_storage
from s3w_tasks.db import session_scope
from s3w_tasks.errors import describe
from s3w_tasks.models import DocumentVersion
from s3w_tasks.worker.files import symlink_in
from s3w_tasks.worker.ids import refuse, shorten, split_ids


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
        problems.append(f"no document version with id {shorten(unknown)}")
    refuse(problems)
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
    """Set ``preview_status`` to NULL for documents whose last version is among these."""
    result = session.execute(_RESET_PREVIEWS, {"ids": [uuid.UUID(i) for i in doc_ver_ids]})
    return int(getattr(result, "rowcount", 0) or 0)


def remove_doc_vers(doc_ver_ids: Any) -> dict[str, Any]:
    """Delete every object under each version's ``docvers/.../<id>/`` folder."""
    from s3w_tasks.retention import delete_docvers

    ids, malformed = split_ids(doc_ver_ids, "document version id")
    deleted, retained = delete_docvers(docver_prefix(i) for i in ids)  # locks are kept
    refuse(malformed)
    return {
        "versions": len(ids),
        "deleted": deleted,
        **({"retained": retained} if retained else {}),
    }

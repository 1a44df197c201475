"""Page previews: each page rendered once and uploaded at every size, or its images deleted."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from s3w_storage.errors import InvalidKey
from s3w_storage.keys import (
    docver_key,
    legacy_page_thumbnail_prefix,
    page_preview_key,
    page_preview_prefix,
)
from s3w_storage.objects import get_storage
from s3w_tasks.db import session_scope
from s3w_tasks.errors import PermanentError, reason
from s3w_tasks.models import DocumentVersion, Page
from s3w_tasks.worker.files import delete_prefixes, ensure_local
from s3w_tasks.worker.ids import refuse, shorten, split_ids
from s3w_thumbs.errors import ThumbnailError


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
        problems.append(f"no page with id {shorten(unknown)}")
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
    refuse(problems)
    return {"pages": rendered, "uploaded": uploaded}


def remove_page_thumbnails(page_ids: Any) -> dict[str, Any]:
    """Delete each page's previews (``previews/pages/``) and legacy ``thumbnails/jpg/`` images."""
    ids, malformed = split_ids(page_ids, "page id")
    prefixes = [p for i in ids for p in (page_preview_prefix(i), legacy_page_thumbnail_prefix(i))]
    deleted = delete_prefixes(prefixes)
    refuse(malformed)
    return {"pages": len(ids), "deleted": deleted}

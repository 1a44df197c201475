"""The keys Papermerge's database says the bucket holds (what ``s3w migrate --verify=db`` checks)."""

from __future__ import annotations

from sqlalchemy import select

from s3w_storage.errors import InvalidKey
from s3w_storage.keys import docver_key, thumbnail_key
from s3w_storage.migrate import ExpectedKeys
from s3w_tasks.db import session_scope
from s3w_tasks.models import Document, DocumentVersion, Page, PreviewStatus


def expected_keys() -> ExpectedKeys:
    """Keys Papermerge's database says exist: every version's file, the thumbnail of every
    ``ready`` document, and the page ids whose previews must be copied."""
    expected = ExpectedKeys()
    with session_scope() as session:
        rows = session.execute(
            select(DocumentVersion.id, DocumentVersion.file_name).where(
                DocumentVersion.file_name.is_not(None)
            )
        )
        for version_id, file_name in rows:
            if not file_name:
                continue
            try:
                expected.required.add(docver_key(version_id, file_name))
            except InvalidKey:  # a name no key can hold; the report of the sync shows these
                continue
        ready = session.execute(
            select(Document.node_id).where(Document.preview_status == PreviewStatus.READY)
        )
        expected.required.update(thumbnail_key(doc_id) for (doc_id,) in ready)
        expected.page_ids.update(str(page_id) for (page_id,) in session.execute(select(Page.id)))
    return expected

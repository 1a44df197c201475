"""Bugs the reliability scenarios found, each pinned by a deterministic test.

These run the operations in-process against the real database and S3; only the
interleaving of two workers is arranged by hand (a real pair of workers hits it only now
and then, as the SIGKILL scenario did).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.stack import pdf_bytes


@pytest.fixture
def worker_env(
    storage_env: dict[str, str], pg_url: str, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    pm.create_schema(pg_url)
    monkeypatch.setenv("PM_DB_URL", pg_url)
    monkeypatch.setenv("PM_MEDIA_ROOT", str(media_root))
    from tests.conftest import clear_caches

    clear_caches()
    return pg_url


def test_thumbnail_requested_while_process_upload_commits_is_rendered(
    worker_env: str, media_root: Path, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the SIGKILL scenario: the thumbnail task's claim ran while the document was
    still ``processing_pages``, process_upload committed ``ready`` before the task read the
    status back, and the task ended ``ok`` ("unclaimed") with no thumbnail and
    ``preview_status`` NULL."""
    from s3w_tasks.worker import thumbnails

    db = worker_env
    user = pm.insert_user(db)
    doc = pm.insert_document(db, user, file_name="race.pdf", processing_status="processing_pages")
    pm.media_file(media_root, doc.version, pdf_bytes(1))
    real_claim = thumbnails.claim_thumbnail
    calls: list[bool] = []

    def claim_then_commit_ready(doc_id: str, token: str) -> bool:
        claimed = real_claim(doc_id, token)
        calls.append(claimed)
        if len(calls) == 1:  # process_upload commits between the claim and the read
            pm.execute(
                db,
                "UPDATE documents SET processing_status = 'ready' WHERE node_id = %s",
                (str(doc.id),),
            )
        return claimed

    monkeypatch.setattr(thumbnails, "claim_thumbnail", claim_then_commit_ready)
    assert thumbnails.generate_doc_thumbnail(str(doc.id), token=uuid.uuid4().hex) == "ready"
    assert calls == [False, True]
    assert pm.document_row(db, doc.id)["preview_status"] == "ready"
    s3.head_object(Bucket=bucket, Key=pm.thumbnail_key(doc.id))

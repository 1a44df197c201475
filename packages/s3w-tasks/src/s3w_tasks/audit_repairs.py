"""The repairs of an audit: files uploaded or restored at once, preview tasks sent in batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from s3w_tasks import contract
from s3w_tasks.db import session_scope

if TYPE_CHECKING:
    from s3w_storage.dataplane import DataPlane
    from s3w_storage.objects import Storage
    from s3w_tasks.audit_result import AuditResult

#: Ids sent per task batch.
SEND_BATCH = 100


class Repairs:
    """The repairs of one run: uploads and restores at once, task messages in batches."""

    def __init__(self, storage: Storage, data: DataPlane, root: str, result: AuditResult):
        from s3w_storage.restore.fetch import ParentGuard

        self.storage, self.data, self.root, self.result = storage, data, root, result
        self.guard = ParentGuard(root)
        self.thumbnails: list[str] = []
        self.pages: list[str] = []
        self.sender: Any = None

    def upload(self, key: str, path: str) -> None:
        from s3w_storage.sync.transfer import put_one

        _key, _size, error = put_one(self.data, (key, path))
        if error is None:
            self.result.uploaded += 1
        else:
            self.result.repair_failures.append(f"{key}: {error}")

    def restore(self, key: str, obj: tuple[int, float, str]) -> None:
        from s3w_storage.errors import StorageError
        from s3w_storage.restore.fetch import Listed, fetch

        size, mtime, etag = obj
        try:
            fetch(
                self.data,
                Listed(key, self.data.head + key, size, mtime, etag),
                self.guard.prepare(key),
            )
        except (StorageError, OSError) as exc:
            self.result.repair_failures.append(f"{key}: {exc}")
            return
        self.result.restored += 1

    def thumbnail(self, doc_id: str) -> None:
        self.thumbnails.append(doc_id)
        if len(self.thumbnails) >= SEND_BATCH:
            self.flush()

    def previews(self, page_id: str) -> None:
        self.pages.append(page_id)
        if len(self.pages) >= SEND_BATCH:
            self.flush()

    def flush(self) -> None:
        if not (self.thumbnails or self.pages):
            return
        if self.sender is None:
            from s3w_tasks.fleet.broker import sender_app

            self.sender = sender_app()
        queue = contract.preview_queue()
        if self.thumbnails:
            with session_scope() as session:
                session.execute(
                    text(
                        "UPDATE documents SET preview_status = NULL WHERE node_id::text = ANY(:ids)"
                    ),
                    {"ids": self.thumbnails},
                )
            for doc_id in self.thumbnails:
                self.sender.send_task(
                    contract.GENERATE_DOC_THUMBNAIL, kwargs={"doc_id": doc_id}, queue=queue
                )
            self.result.thumbnails_requested += len(self.thumbnails)
            self.thumbnails = []
        if self.pages:
            self.sender.send_task(
                contract.GENERATE_PAGE_IMAGE, kwargs={"page_ids": list(self.pages)}, queue=queue
            )
            self.result.previews_requested += len(self.pages)
            self.pages = []

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.sender is not None:
                self.sender.close()

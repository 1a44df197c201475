"""Backfill over the workers: preview tasks sent in bounded batches, stuck uploads sent again.

The contract's thumbnail and page-image tasks are enqueued for every document or page that
needs one, in bounded batches so the broker's memory stays flat.

Documents: the rule of :func:`s3w_tasks.worker.thumbnails.needs_thumbnail` (processing
ready, thumbnail NULL or failed), read in id order one batch at a time. Pages: every page of
the last version of a ready document that lacks any of its sm/md/lg/xl previews in the
bucket, found by walking the page ids (database, id order) alongside the listing of
``previews/pages/`` (key order = page id order), so neither side is held in memory.

Before each batch the coordinator waits until the preview queue holds fewer than
``max_queued`` messages, then sends the batch.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from s3w_tasks import contract
from s3w_tasks.db import session_scope
from s3w_tasks.models import Document, DocumentVersion, Page, ProcessingStatus
from s3w_tasks.worker.thumbnails import needs_thumbnail

#: Ids read from the database per query, and sent per round.
BATCH = 500
#: The preview queue is refilled only while it holds fewer messages than this.
MAX_QUEUED = 2000


@dataclass
class BackfillProgress:
    kind: str  # "thumbnails" | "page previews"
    queue: str
    enqueued: int = 0
    tasks: int = 0
    queued: int = 0  # messages waiting in the queue at the last look
    seconds: float = 0.0


def thumbnail_batches(batch: int = BATCH) -> Iterator[list[str]]:
    """Batches of ids, in id order, of the documents that need a thumbnail (all of them)."""
    after: uuid.UUID | None = None
    while True:
        query = select(Document.node_id).where(needs_thumbnail()).order_by(Document.node_id)
        if after is not None:
            query = query.where(Document.node_id > after)
        with session_scope() as session:
            ids = list(session.scalars(query.limit(batch)))
        if not ids:
            return
        after = ids[-1]
        yield [str(i) for i in ids]


def _last_version_pages(batch: int) -> Iterator[str]:
    """Page ids (id order) of the last version of every ready document."""
    last = (
        select(DocumentVersion.document_id, func.max(DocumentVersion.number).label("number"))
        .group_by(DocumentVersion.document_id)
        .subquery()
    )
    after: uuid.UUID | None = None
    while True:
        query = (
            select(Page.id)
            .join(DocumentVersion, Page.document_version_id == DocumentVersion.id)
            .join(
                last,
                (last.c.document_id == DocumentVersion.document_id)
                & (last.c.number == DocumentVersion.number),
            )
            .join(Document, Document.node_id == DocumentVersion.document_id)
            .where(Document.processing_status == ProcessingStatus.READY)
            .order_by(Page.id)
            .limit(batch)
        )
        if after is not None:
            query = query.where(Page.id > after)
        with session_scope() as session:
            ids = list(session.scalars(query))
        if not ids:
            return
        after = ids[-1]
        yield from (str(i) for i in ids)


def _pages_with_previews(storage: Any) -> Iterator[tuple[str, frozenset[str]]]:
    """(page id, sizes present) from the bucket, in page id order."""
    from s3w_storage.keys import PREVIEW_SIZES

    current: str | None = None
    sizes: set[str] = set()
    for obj in storage.iter_objects(prefix="previews/pages/"):
        parts = obj.key.split("/")  # previews/pages/ab/cd/<id>/<size>.jpg
        if len(parts) != 6:
            continue
        page, size = parts[4], parts[5].removesuffix(".jpg")
        if page != current:
            if current is not None:
                yield current, frozenset(sizes)
            current, sizes = page, set()
        if size in PREVIEW_SIZES:
            sizes.add(size)
    if current is not None:
        yield current, frozenset(sizes)


def pages_needing_previews(storage: Any, batch: int = BATCH) -> Iterator[list[str]]:
    """Batches of page ids lacking any preview size in the bucket."""
    from s3w_storage.keys import PREVIEW_SIZES

    wanted = frozenset(PREVIEW_SIZES)
    remote = _pages_with_previews(storage)
    have = next(remote, None)
    out: list[str] = []
    for page in _last_version_pages(batch):
        while have is not None and have[0] < page:
            have = next(remote, None)
        complete = have is not None and have[0] == page and have[1] >= wanted
        if not complete:
            out.append(page)
            if len(out) >= batch:
                yield out
                out = []
    if out:
        yield out


def enqueue(
    kind: str,
    batches: Iterator[list[str]],
    *,
    per_task: int = 1,
    max_queued: int = MAX_QUEUED,
    on_progress: Callable[[BackfillProgress], None] | None = None,
    poll: float = 0.5,
) -> BackfillProgress:
    """Send one task per document (``thumbnails``) or per ``per_task`` pages
    (``page previews``) to the preview queue, never letting it grow past ``max_queued``."""
    from s3w_tasks.fleet.broker import sender_app, watching

    name = contract.GENERATE_DOC_THUMBNAIL if kind == "thumbnails" else contract.GENERATE_PAGE_IMAGE
    queue = contract.preview_queue()
    progress = BackfillProgress(kind, queue)
    started = time.monotonic()
    sender = sender_app()
    try:
        with watching(sender, queue) as watch:
            for ids in batches:
                while True:
                    progress.queued = watch.depth()
                    if progress.queued + len(ids) <= max(max_queued, len(ids)):
                        break
                    progress.seconds = time.monotonic() - started
                    if on_progress is not None:
                        on_progress(progress)
                    time.sleep(poll)
                if kind == "thumbnails":
                    messages: list[dict[str, Any]] = [{"doc_id": i} for i in ids]
                else:
                    chunk = max(1, per_task)
                    messages = [{"page_ids": ids[n : n + chunk]} for n in range(0, len(ids), chunk)]
                for kwargs in messages:
                    sender.send_task(name, kwargs=kwargs, queue=queue, connection=watch.connection)
                progress.enqueued += len(ids)
                progress.tasks += len(messages)
                progress.seconds = time.monotonic() - started
                if on_progress is not None:
                    on_progress(progress)
            progress.queued = watch.depth()
    finally:
        sender.close()
    return progress


# --------------------------------------------------------------- uploads left unprocessed

#: Processing states a document can be left in when its ``process_upload`` never ran to the
#: end (the message lost, or its worker gone for good).
UNFINISHED: tuple[ProcessingStatus, ...] = (
    ProcessingStatus.UPLOADED,
    ProcessingStatus.CONVERTING,
    ProcessingStatus.PROCESSING_PAGES,
)


@dataclass(frozen=True)
class StuckUpload:
    """A document whose processing did not finish, and the ``process_upload`` kwargs that
    Papermerge core sent for it (rebuilt from its first version)."""

    document_id: str
    document_version_id: str
    lang: str
    user_id: str
    status: str

    def kwargs(self) -> dict[str, str]:
        return {
            "document_id": self.document_id,
            "document_version_id": self.document_version_id,
            "lang": self.lang,
            "user_id": self.user_id,
        }


def stuck_uploads(
    older_than: float,
    statuses: tuple[ProcessingStatus, ...] = UNFINISHED,
    batch: int = BATCH,
) -> Iterator[list[StuckUpload]]:
    """Batches (document id order) of documents in one of ``statuses`` whose first version
    was created more than ``older_than`` seconds ago by the database's clock."""
    first = (
        select(DocumentVersion.document_id, func.min(DocumentVersion.number).label("number"))
        .group_by(DocumentVersion.document_id)
        .subquery()
    )
    cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than)
    after: uuid.UUID | None = None
    while True:
        query = (
            select(
                Document.node_id,
                DocumentVersion.id,
                DocumentVersion.lang,
                DocumentVersion.created_by,
                Document.processing_status,
            )
            .join(DocumentVersion, DocumentVersion.document_id == Document.node_id)
            .join(
                first,
                (first.c.document_id == DocumentVersion.document_id)
                & (first.c.number == DocumentVersion.number),
            )
            .where(Document.processing_status.in_(statuses), DocumentVersion.created_at < cutoff)
            .order_by(Document.node_id)
            .limit(batch)
        )
        if after is not None:
            query = query.where(Document.node_id > after)
        with session_scope() as session:
            rows = session.execute(query).all()
        if not rows:
            return
        after = rows[-1][0]
        yield [
            StuckUpload(str(doc), str(ver), lang, str(user), status.value)
            for doc, ver, lang, user, status in rows
        ]


@dataclass
class ReprocessResult:
    found: int = 0
    sent: int = 0
    #: processing status -> documents found in it
    statuses: dict[str, int] = field(default_factory=dict)
    documents: list[str] = field(default_factory=list)


def reprocess_uploads(
    older_than: float,
    *,
    statuses: tuple[ProcessingStatus, ...] = UNFINISHED,
    dry_run: bool = False,
    on_batch: Callable[[list[StuckUpload]], None] | None = None,
) -> ReprocessResult:
    """Send ``process_upload`` again, exactly as Papermerge core sends it, for every document
    left unprocessed for longer than ``older_than`` seconds. ``process_upload`` is
    idempotent, so a document whose first message is still on its way is processed once."""
    from s3w_tasks.fleet.broker import sender_app

    result = ReprocessResult()
    sender = None if dry_run else sender_app()
    queue = contract.s3_queue()
    try:
        for found in stuck_uploads(older_than, statuses):
            for item in found:
                result.found += 1
                result.statuses[item.status] = result.statuses.get(item.status, 0) + 1
                result.documents.append(item.document_id)
                if sender is not None:
                    sender.send_task(contract.PROCESS_UPLOAD, kwargs=item.kwargs(), queue=queue)
                    result.sent += 1
            if on_batch is not None:
                on_batch(found)
    finally:
        if sender is not None:
            sender.close()
    return result

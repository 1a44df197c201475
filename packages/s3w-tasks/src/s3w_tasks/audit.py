"""``s3w audit``: the database, the bucket and the media root held against each other.

Does every document version in the database exist, intact, in the bucket and on disk; is
every ``ready`` thumbnail and page preview in the bucket; and what in the bucket does no row
own?

Each part of the layout is checked by merging sorted streams: the database (server-side
cursors, ``ORDER BY`` the key or the id), the bucket listing (key order) and the media root
(walked sorted). Memory stays flat with the archive: nothing holds a whole list, and the
findings keep at most :data:`SAMPLE` examples per kind next to their counts.

With ``repair``: a version file the bucket lacks is uploaded from disk, one the disk lacks
is restored from the bucket, a ``ready`` document without its thumbnail is set back to
``preview_status = NULL`` and its thumbnail task sent (as the core would), and pages without
previews get their page-image task. ``delete_orphans`` deletes the orphans only when there
are no more than ``max_delete``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from s3w_storage.keys import PREVIEW_SIZES
from s3w_storage.reconcile import merge, owner_id, walk_sorted
from s3w_tasks.audit_repairs import Repairs
from s3w_tasks.audit_result import SAMPLE, AuditOptions, AuditResult, Finding
from s3w_tasks.db import session_scope
from s3w_tasks.retention import sort_orphan

if TYPE_CHECKING:
    from s3w_storage.dataplane import DataPlane
    from s3w_storage.objects import Storage

__all__ = ["AuditOptions", "AuditResult", "Finding", "audit"]

#: Rows fetched per round trip from a server-side cursor.
BATCH = 2000

#: The folders whose objects must belong to a row.
ROOTS = ("docvers/", "thumbnails/", "previews/", "ocr/")

_VERSION_KEYS = """
SELECT key FROM (
    SELECT 'docvers/' || substr(v.id::text, 1, 2) || '/' || substr(v.id::text, 3, 2) || '/'
           || v.id::text || '/' || v.file_name AS key
    FROM document_versions v
    WHERE v.file_name IS NOT NULL AND v.file_name <> ''
) keys
ORDER BY key COLLATE "C"
"""
_DOCUMENTS = """
SELECT d.node_id::text AS id, d.preview_status::text = 'ready' AS ready
FROM documents d ORDER BY d.node_id::text COLLATE "C"
"""
_PAGES = """
WITH last AS (
    SELECT document_id, max(number) AS number FROM document_versions GROUP BY document_id
)
SELECT p.id::text AS id,
       coalesce(d.preview_status::text = 'ready' AND v.number = last.number, false) AS wanted
FROM pages p
JOIN document_versions v ON v.id = p.document_version_id
JOIN documents d ON d.node_id = v.document_id
JOIN last ON last.document_id = v.document_id
ORDER BY p.id::text COLLATE "C"
"""


def _rows(sql: str) -> Iterator[Any]:
    """The rows of ``sql`` from a server-side cursor, :data:`BATCH` per round trip."""
    with session_scope() as session:
        result = session.execute(text(sql).execution_options(stream_results=True, yield_per=BATCH))
        yield from result


def _grouped(data: DataPlane, folder: str, result: AuditResult) -> Iterator[tuple[str, Any]]:
    """(owner id, [(key, size)]) of the objects under ``folder`` ('thumbnails/jpg'), in
    id order; every other object under its top folder ('thumbnails/'), being outside the
    sharded layout, is an orphan at once."""
    cut = len(data.head)
    current: str | None = None
    group: list[tuple[str, int]] = []
    top = folder.split("/", 1)[0] + "/"
    for full, size, _mtime, _etag in data.listing(data.head + top):
        key = full[cut:]
        result.objects += 1
        ident = owner_id(key, folder)
        if ident is None:
            result.orphans.add(key, size)
            continue
        if ident != current:
            if current is not None:
                yield current, group
            current, group = ident, []
        group.append((key, size))
    if current is not None:
        yield current, group


def audit(
    storage: Storage,
    media_root: str,
    options: AuditOptions | None = None,
    *,
    on_phase: Callable[[str], None] | None = None,
) -> AuditResult:
    """Compare database, bucket and media root; with ``options.repair`` fix what can be
    fixed, with ``options.delete_orphans`` delete orphans within ``max_delete``."""
    import os

    from s3w_storage.dataplane import DataPlane

    options = options or AuditOptions()
    started = time.monotonic()
    root = os.path.abspath(media_root)
    result = AuditResult(root=root)
    data = DataPlane(storage.settings)
    repairs = Repairs(storage, data, root, result) if options.repair else None
    if options.delete_orphans:  # every orphan key is kept when few enough to delete
        result.orphans.limit = max(SAMPLE, options.max_delete + 1)
    phase = on_phase or (lambda name: None)
    phase("document versions")
    _versions(storage, data, root, options, result, repairs)
    phase("thumbnails")
    _thumbnails(data, result, repairs)
    phase("page previews")
    _previews(data, result, repairs)
    phase("ocr")
    _ocr(data, result)
    if repairs is not None:
        repairs.close()
    if options.delete_orphans:
        _delete(storage, options, result)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _versions(
    storage: Storage,
    data: DataPlane,
    root: str,
    options: AuditOptions,
    result: AuditResult,
    repairs: Repairs | None,
) -> None:
    cut = len(data.head)
    expected = ((row.key, True) for row in _rows(_VERSION_KEYS))
    remote = (
        (full[cut:], (size, mtime, etag))
        for full, size, mtime, etag in data.listing(data.head + "docvers/")
    )
    local = ((key, (size, path)) for key, size, path in walk_sorted(root, "docvers"))
    for key, (row, obj, disk) in merge(expected, remote, local):
        if obj is not None:
            result.objects += 1
        if disk is not None:
            result.local_files += 1
        if row is None:
            if obj is not None:
                sort_orphan(storage, result, key, obj[0])  # or retained, under object lock
            continue
        result.versions += 1
        if obj is None:
            result.missing_in_bucket.add(key)
        if disk is None:
            result.missing_on_disk.add(key)
        if obj is not None and disk is not None:
            why = _difference(data, key, obj, disk, options.checksum)
            if why is not None:
                result.different.add(f"{key} ({why})")
        if repairs is not None:
            if obj is None and disk is not None:
                repairs.upload(key, disk[1])
            elif disk is None and obj is not None:
                repairs.restore(key, obj)


def _difference(
    data: DataPlane, key: str, obj: tuple[int, float, str], disk: tuple[int, str], checksum: bool
) -> str | None:
    size, _mtime, etag = obj
    if size != disk[0]:
        return f"bucket {size} bytes, disk {disk[0]} bytes"
    if not checksum:
        return None
    same = data.matches_file(data.head + key, etag, disk[1])
    return None if same is not False else "same size, other content"


def _thumbnails(data: DataPlane, result: AuditResult, repairs: Repairs | None) -> None:
    documents = ((row.id, bool(row.ready)) for row in _rows(_DOCUMENTS))
    pages = ((row.id, False) for row in _rows(_PAGES))  # earlier releases' page images
    owners = ((ident, any(v for v in flags if v)) for ident, flags in merge(documents, pages))
    for ident, (ready, objects) in merge(owners, _grouped(data, "thumbnails/jpg", result)):
        if ready is None:
            for key, size in objects or []:
                result.orphans.add(key, size)
            continue
        if ready:
            result.documents_ready += 1
            names = {key.rsplit("/", 1)[1] for key, _size in objects or []}
            if "sm.jpg" not in names:
                result.missing_thumbnails.add(ident)
                if repairs is not None:
                    repairs.thumbnail(ident)


def _previews(data: DataPlane, result: AuditResult, repairs: Repairs | None) -> None:
    pages = ((row.id, bool(row.wanted)) for row in _rows(_PAGES))
    wanted = {f"{size}.jpg" for size in PREVIEW_SIZES}
    for ident, (want, objects) in merge(pages, _grouped(data, "previews/pages", result)):
        if want is None:
            for key, size in objects or []:
                result.orphans.add(key, size)
            continue
        if want:
            result.pages_checked += 1
            names = {key.rsplit("/", 1)[1] for key, _size in objects or []}
            if not wanted <= names:
                result.missing_previews.add(ident)
                if repairs is not None:
                    repairs.previews(ident)


def _ocr(data: DataPlane, result: AuditResult) -> None:
    pages = ((row.id, True) for row in _rows(_PAGES))
    for _ident, (page, objects) in merge(pages, _grouped(data, "ocr/pages", result)):
        if page is None:
            for key, size in objects or []:
                result.orphans.add(key, size)


def _delete(storage: Storage, options: AuditOptions, result: AuditResult) -> None:
    if result.orphans.count > options.max_delete:
        result.delete_refused = (
            f"{result.orphans.count} orphans, more than --max-delete {options.max_delete}: "
            "nothing was deleted"
        )
        return
    if not result.orphans.items:
        return
    outcome = storage.delete(result.orphans.items)
    result.deleted = outcome.deleted
    result.repair_failures.extend(f"{k}: {code} {msg}" for k, code, msg in outcome.errors)

"""The sync plan: which local files to upload and which remote objects to delete, and why.

A file is uploaded when the bucket has no object at its key, when the sizes differ, or when
the local file was modified after the object was (its mtime, in whole seconds like
LastModified, is newer), as ``aws s3 sync`` and s5cmd decide; a same-size edit within the
second of the upload is only seen with ``checksum``. With ``checksum`` the content decides instead: the file's
MD5 against the object's ETag for single-part objects, or against the MD5 s3w stores in the
object's metadata when it uploads multipart; a multipart ETag is never taken for an MD5.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from s3w_storage.sync.listing import MAX_SHARDS, RemoteObject, fanout_prefixes, list_remote
from s3w_storage.sync.walk import (
    Failure,
    KeyFilter,
    LocalFile,
    LocalTree,
    check_media_root,
    check_within,
    walk,
)

if TYPE_CHECKING:
    from s3w_storage.objects import Storage

#: Default bound on how many objects one ``--delete`` run may remove.
DEFAULT_MAX_DELETE = 1000


@dataclass(frozen=True)
class SyncOptions:
    """How to sync; every field has the safe default (no deletes, change detection by listing)."""

    delete: bool = False
    max_delete: int = DEFAULT_MAX_DELETE
    dry_run: bool = False
    checksum: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: Concurrent requests per process (None: the settings' ``max_concurrency``).
    jobs: int | None = None
    #: Worker processes for small files (None: decide from the plan and the CPU count).
    processes: int | None = None
    #: Only keys under this folder prefix ('docvers/ab/'; '' = everything): one shard of a
    #: distributed sync. The walk, the listing and ``--delete`` stay inside it.
    within: str = ""


@dataclass(frozen=True, slots=True)
class Upload:
    file: LocalFile
    reason: str  # new | size | newer | checksum


@dataclass
class SyncPlan:
    """Everything :func:`s3w_storage.sync.execute` will do, computed without writing anything."""

    root: str
    local_files: int
    remote_objects: int
    uploads: list[Upload] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[Failure] = field(default_factory=list)
    skipped_links: int = 0
    skipped_special: int = 0
    excluded: int = 0

    @property
    def upload_bytes(self) -> int:
        return sum(u.file.size for u in self.uploads)


def file_md5(path: str, *, block: int = 1 << 20) -> str:
    """Hex MD5 of a file's content, read in blocks (hashlib releases the GIL)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def build_plan(
    storage: Storage,
    media_root: str | os.PathLike[str],
    options: SyncOptions | None = None,
    *,
    on_phase: Callable[[str], None] | None = None,
) -> SyncPlan:
    """Walk, list and diff. Raises :class:`~s3w_storage.errors.InvalidArgument` for a bad
    media root before any network call, and a :class:`~s3w_storage.errors.StorageError` when
    the bucket cannot be listed; per-file problems are collected in ``plan.errors``."""
    options = options or SyncOptions()
    jobs = options.jobs or storage.settings.max_concurrency
    key_filter = KeyFilter(options.include, options.exclude)
    root = check_media_root(media_root)
    within = check_within(options.within)
    if on_phase:
        on_phase("scanning")
    # The listing needs only the folder layout to shard, so it runs while the tree is walked.
    points = [within + p for p in fanout_prefixes(os.path.join(root, within))]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3w-list") as pool:
        listing = pool.submit(
            list_remote, storage, points, shards=min(jobs, MAX_SHARDS), within=within
        )
        tree = walk(root, key_filter, within=within)
        if on_phase:
            on_phase("listing")
        remote = listing.result()
    if on_phase:
        on_phase("comparing")
    return diff(storage, tree, remote, options, key_filter, jobs=jobs)


def diff(
    storage: Storage,
    tree: LocalTree,
    remote: dict[str, RemoteObject],
    options: SyncOptions,
    key_filter: KeyFilter,
    *,
    jobs: int,
) -> SyncPlan:
    """The plan for ``tree`` against the listing ``remote`` (keys relative to the prefix)."""
    plan = SyncPlan(
        root=tree.root,
        local_files=len(tree.files),
        remote_objects=len(remote),
        errors=list(tree.errors),
        skipped_links=tree.skipped_links,
        skipped_special=tree.skipped_special,
        excluded=tree.excluded,
    )
    to_hash: list[tuple[LocalFile, RemoteObject]] = []
    for local in tree.files:
        obj = remote.get(local.key)
        if obj is None:
            plan.uploads.append(Upload(local, "new"))
        elif obj.size != local.size:
            plan.uploads.append(Upload(local, "size"))
        elif options.checksum:
            to_hash.append((local, obj))
        elif int(local.mtime) > obj.mtime:  # LastModified has whole seconds
            plan.uploads.append(Upload(local, "newer"))
        else:
            plan.unchanged += 1
    if to_hash:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="s3w-md5") as pool:
            for local, verdict in pool.map(lambda pair: _compare(storage, *pair), to_hash):
                if isinstance(verdict, Failure):
                    plan.errors.append(verdict)
                elif verdict:
                    plan.uploads.append(Upload(local, "checksum"))
                else:
                    plan.unchanged += 1
    if options.delete:
        local_keys = {f.key for f in tree.files}
        plan.deletes = sorted(
            key
            for key in remote
            if key not in local_keys and (not key_filter.active or key_filter(key))
        )
    return plan


def _compare(
    storage: Storage, local: LocalFile, obj: RemoteObject
) -> tuple[LocalFile, bool | Failure]:
    """(file, True when its content differs from the object's, or why it could not tell)."""
    from s3w_storage.errors import StorageError

    try:
        # Nothing to compare with (another tool's parts of unknown size): upload.
        same = storage.data.matches_file(storage.full_key(local.key), obj.etag, local.path)
        return local, same is not True
    except OSError as exc:
        return local, Failure(local.key, f"cannot read {local.path}: {exc.strerror}")
    except StorageError as exc:
        return local, Failure(local.key, str(exc))

"""Where a distributed sync is cut: shard folder prefixes, and the loose files above them.

Shards are the folders where the tree fans out (``docvers/00/`` ... ``docvers/ff/``,
``thumbnails/jpg/00/``, ``previews/pages/00/``, ``ocr/pages/00/``, and any other top-level
folder), found by scanning a few levels with the walk's own rules and, for ``--delete``,
delimiter listings of the same levels (so remote-only folders are covered). Files lying
directly in the levels above the shards (normally none) are synced by the coordinator itself
with the same engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from s3w_storage.sync import (
    Failure,
    KeyFilter,
    LocalFile,
    LocalTree,
    RemoteObject,
    SyncOptions,
    SyncResult,
    execute,
)
from s3w_storage.sync.plan import diff
from s3w_storage.sync.walk import scan_folder

if TYPE_CHECKING:
    from s3w_storage.objects import Storage

#: A folder with at least this many sub-folders is where the tree fans out (as the engine's
#: listing decides); below :data:`MAX_DEPTH` levels every folder is a shard.
NARROW = 16
MAX_DEPTH = 4
#: Consecutive small shard folders go to one task until their entries (files and sub-folders,
#: counted with one ``scandir`` each) reach this many: a folder of a large archive is a task
#: of its own, while a small tree is not cut into hundreds of tasks of five files.
GROUP_ENTRIES = 128


@dataclass
class Layout:
    """Where the run is cut: shard folder prefixes, and the files directly in the levels above."""

    shards: list[str] = field(default_factory=list)
    #: level ('' or 'docvers/') -> (local files directly in it, remote objects directly in it)
    loose: dict[str, tuple[list[LocalFile], dict[str, RemoteObject]]] = field(default_factory=dict)
    #: The scan of the levels above the shards: their files (also in ``loose``), and what it
    #: skipped or could not read.
    scanned: LocalTree = field(default_factory=lambda: LocalTree(root=""))

    @property
    def skipped_links(self) -> int:
        return self.scanned.skipped_links

    @property
    def skipped_special(self) -> int:
        return self.scanned.skipped_special

    @property
    def errors(self) -> list[Failure]:
        return self.scanned.errors


def _scan_level(tree: LocalTree, rel: str) -> tuple[list[str], list[LocalFile]]:
    """Sub-folder names and regular files directly in ``rel`` of the media root, scanned by
    the walk's own rules (:func:`~s3w_storage.sync.walk.scan_folder`; what it skips or
    cannot read is counted in ``tree``)."""
    path = os.path.join(tree.root, *rel.split("/")) if rel else tree.root
    if os.path.islink(path.rstrip(os.sep)) or not os.path.isdir(path):
        return [], []
    before = len(tree.files)
    folders = scan_folder(tree, path, rel)
    return sorted(key[len(rel) :].rstrip("/") for _path, key in folders), tree.files[before:]


def plan_layout(storage: Storage, root: str, *, remote_folders: bool) -> Layout:
    """The shards of a run (sorted) and the loose files above them.

    ``remote_folders`` (for ``--delete``) adds folders that exist only in the bucket.
    """
    layout = Layout(scanned=LocalTree(root=root))
    stack = [("", 0)]
    while stack:
        rel, depth = stack.pop()
        local_dirs, local_files = _scan_level(layout.scanned, rel)
        remote_dirs: list[str] = []
        remote_objects: dict[str, RemoteObject] = {}
        if remote_folders or local_files:
            prefixes, remote_objects = storage.list_folder(rel)
            remote_dirs = [p[len(rel) :].rstrip("/") for p in prefixes]
        subdirs = sorted(set(local_dirs) | (set(remote_dirs) if remote_folders else set()))
        if depth > 0 and not subdirs:  # a leaf folder: one shard
            layout.shards.append(rel)
            continue
        if local_files or (remote_folders and remote_objects):
            layout.loose[rel] = (local_files, remote_objects)
        if depth > 0 and (len(subdirs) >= NARROW or depth >= MAX_DEPTH):
            layout.shards.extend(f"{rel}{name}/" for name in subdirs)
        else:
            stack.extend((f"{rel}{name}/", depth + 1) for name in subdirs)
    layout.shards.sort()
    return layout


def group_folders(root: str, folders: list[str], *, target: int = GROUP_ENTRIES) -> list[list[str]]:
    """Consecutive folders joined into shards of about ``target`` entries each."""
    groups: list[list[str]] = []
    current: list[str] = []
    size = 0
    for folder in folders:
        try:
            with os.scandir(os.path.join(root, *folder.split("/"))) as entries:
                count = sum(1 for _ in entries)
        except OSError:  # remote-only folder (or unreadable: its shard reports it)
            count = 1
        if current and size + count > target:
            groups.append(current)
            current, size = [], 0
        current.append(folder)
        size += count
    if current:
        groups.append(current)
    return groups


def sync_loose(
    storage: Storage, layout: Layout, root: str, options: SyncOptions, *, phase: str
) -> SyncResult | None:
    """The files directly in the levels above the shards, synced here by the same engine."""
    if not layout.loose and not layout.errors:
        return None
    key_filter = KeyFilter(options.include, options.exclude)
    tree = LocalTree(root=root, errors=list(layout.errors) if phase == "sync" else [])
    tree.skipped_links, tree.skipped_special = layout.skipped_links, layout.skipped_special
    remote: dict[str, RemoteObject] = {}
    for files, objects in layout.loose.values():
        for file in files:
            if key_filter(file.key):
                tree.files.append(file)
            else:
                tree.excluded += 1
        remote.update(objects)
    jobs = options.jobs or storage.settings.max_concurrency
    plan = diff(storage, tree, remote, options, key_filter, jobs=jobs)
    run_options = replace(options, processes=0, delete=options.delete and phase == "delete")
    return execute(storage, plan, run_options)


def local_count(root: str, folders: list[str], options: SyncOptions) -> int:
    """Regular files (after the include/exclude filters) the coordinator's media root holds
    in ``folders``: the count a worker must match before it deletes there."""
    from s3w_storage.sync.walk import walk

    key_filter = KeyFilter(options.include, options.exclude)
    return sum(len(walk(root, key_filter, within=folder).files) for folder in folders)

"""The remote side of a sync: list the bucket under the prefix in parallel key-range shards.

One paginated listing returns 1,000 keys per request, so a large bucket is many sequential
round trips. The key space is cut into contiguous ranges, each listed by its own thread with
``StartAfter`` and stopped at the range's upper bound; together the ranges cover every key
under the prefix exactly once, so remote-only keys are found too. The split points are the
media root's top-level folders and, below them, the first level that fans out
(``docvers/ab/``, ``ocr/pages/ab/``, ...), read with a few ``scandir`` calls, so the listing
starts at once and runs while the local tree is still being walked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from s3w_storage.dataplane import DataPlane
from s3w_storage.folders import RemoteObject as RemoteObject  # its home before Storage.list_folder

if TYPE_CHECKING:
    from s3w_storage.objects import Storage

#: Concurrent listing requests; more only queue up at the server.
MAX_SHARDS = 8


def fanout_prefixes(media_root: str, *, max_depth: int = 4, narrow: int = 16) -> list[str]:
    """Sorted folder prefixes ('docvers/00/', ...) where the media root's tree fans out.

    A folder with fewer than ``narrow`` sub-folders is descended into (``ocr/`` -> ``ocr/pages/``)
    up to ``max_depth`` levels; symbolic links are not followed. Unreadable folders are
    skipped here (the walk reports them).
    """
    found: list[str] = []
    stack: list[tuple[str, str, int]] = [(media_root, "", 0)]
    while stack:
        path, rel, depth = stack.pop()
        try:
            with os.scandir(path) as entries:
                subdirs = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
        if depth > 0 and (len(subdirs) >= narrow or depth >= max_depth):
            found.extend(f"{rel}{name}/" for name in subdirs)
            continue
        for name in subdirs:
            stack.append((os.path.join(path, name), f"{rel}{name}/", depth + 1))
        if depth > 0 and not subdirs:
            found.append(rel)
    return sorted(found)


def shard_bounds(points: Sequence[str], shards: int) -> list[str]:
    """Up to ``shards - 1`` sorted split keys chosen evenly from the sorted ``points``.

    Shard ``i`` holds the keys ``k`` with ``bounds[i-1] < k <= bounds[i]``; the first has no
    lower bound and the last no upper bound, so every key lands in exactly one shard.
    """
    if shards <= 1 or len(points) < 2:
        return []
    step = len(points) / shards
    return sorted({points[int(step * i) - 1] for i in range(1, shards)})


def list_remote(
    storage: Storage,
    points: Sequence[str] = (),
    *,
    shards: int = MAX_SHARDS,
    within: str = "",
) -> dict[str, RemoteObject]:
    """Every object under the storage prefix (and the folder prefix ``within``, when given),
    keyed by its key relative to the storage prefix.

    ``points`` (sorted, code-point order = S3's UTF-8 byte order; e.g. from
    :func:`fanout_prefixes`) only decide where the key space is split into ``shards``.
    """
    bounds = shard_bounds(points, shards)
    ranges: list[tuple[str | None, str | None]] = []
    lower: str | None = None
    for bound in bounds:
        ranges.append((lower, bound))
        lower = bound
    ranges.append((lower, None))
    data = storage.data
    if len(ranges) == 1:
        return _list_range(data, None, None, within)
    found: dict[str, RemoteObject] = {}
    with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="s3w-list") as pool:
        for part in pool.map(lambda r: _list_range(data, r[0], r[1], within), ranges):
            found.update(part)
    return found


def _list_range(
    data: DataPlane, after: str | None, upto: str | None, within: str = ""
) -> dict[str, RemoteObject]:
    """Relative keys in ``(after, upto]`` (open ends when None) under ``within``."""
    head = data.head
    start = _bound(head + after) if after is not None else None
    stop = _bound(head + upto) if upto is not None else None
    found: dict[str, RemoteObject] = {}
    cut = len(head)
    for key, size, mtime, etag in data.listing(head + within, start_after=start):
        if stop is not None and key > stop:
            break
        found[key[cut:]] = RemoteObject(size, mtime, etag)
    return found


def _bound(key: str) -> str:
    """A range bound the data plane can send: a folder bound ('docvers/ab/') cannot end in
    '/' there, so it becomes 'docvers/ab/ ', which sorts the same against every key without
    a control character (they are never stored)."""
    return key + " " if key.endswith("/") else key

"""Sorted key streams and their merge, for comparing database, bucket and disk without
holding any of them: every side is read in key order (S3 lists in UTF-8 byte order, which
is Python's code-point order; the database sorts with ``COLLATE "C"``; the disk is walked
folder by folder, sorted) and the streams are merged one key at a time.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from typing import Any

from s3w_storage.keys import canonical_id


def walk_sorted(root: str, folder: str) -> Iterator[tuple[str, int, str]]:
    """(key, size, path) of every regular file under ``root/folder`` in key order; symbolic
    links are not followed and temporary files of a transfer are skipped. Memory holds one
    folder's entries per level."""
    start = os.path.join(root, *folder.strip("/").split("/"))
    yield from _walk(start, folder.strip("/") + "/")


def _walk(path: str, rel: str) -> Iterator[tuple[str, int, str]]:
    try:
        with os.scandir(path) as entries:
            found = []
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    found.append((entry.name + "/", entry.path, -1))
                elif stat.S_ISREG(info.st_mode) and not entry.name.endswith(".s3w-part"):
                    found.append((entry.name, entry.path, info.st_size))
    except OSError:
        return
    # "a/" sorts after "a-b" as the keys "a/x" and "a-b" do.
    for name, full, size in sorted(found):
        if size < 0:
            yield from _walk(full, rel + name)
        else:
            yield rel + name, size, full


def merge(*streams: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, list[Any]]]:
    """Merge streams of (key, value), each in strictly ascending key order, into
    (key, [value from each stream or None]) in key order."""
    iters = [iter(s) for s in streams]
    heads: list[tuple[str, Any] | None] = [next(it, None) for it in iters]
    while True:
        keys = [h[0] for h in heads if h is not None]
        if not keys:
            return
        low = min(keys)
        row: list[Any] = []
        for index, head in enumerate(heads):
            if head is not None and head[0] == low:
                row.append(head[1])
                heads[index] = next(iters[index], None)
            else:
                row.append(None)
        yield low, row


def owner_id(key: str, root: str) -> str | None:
    """The id a key of the sharded layout belongs to (``<root>/ab/cd/<id>/<name>``), or
    None when the key does not have that shape."""
    parts = key[len(root) + 1 :].split("/") if key.startswith(root + "/") else []
    if len(parts) != 4 or not parts[3]:
        return None
    ab, cd, ident, _name = parts
    try:
        canonical = canonical_id(ident)
    except ValueError:
        return None
    if canonical != ident or ab != ident[0:2] or cd != ident[2:4]:
        return None
    return ident

"""Bring one object back to disk: a temporary name beside the final one, the bytes verified
against the stored MD5, fsynced, the object's modification time set, then renamed.

A run killed at any point leaves the final name either absent, as it was, or whole; the
temporary files it leaves (``.<name>.<random>.restore.s3w-part``) are removed by the next
run (:func:`remove_stale`) and never uploaded by ``s3w sync``.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from s3w_storage.errors import StorageError
from s3w_storage.files import PARTIAL_SUFFIX, replacing
from s3w_storage.sync.transfer import MTIME_METADATA

if TYPE_CHECKING:
    from s3w_storage.dataplane import DataPlane

#: The end of every temporary file a restore writes (a sync never uploads these).
TEMP_SUFFIX = ".restore" + PARTIAL_SUFFIX


@dataclass(frozen=True, slots=True)
class Listed:
    """One object as the listing gives it; ``key`` is relative to the prefix."""

    key: str
    full: str
    size: int
    mtime: float  # LastModified
    etag: str


def fetch(data: DataPlane, obj: Listed, final: str) -> int:
    """Download ``obj`` to the path ``final``; returns its size. Raises StorageError or
    OSError; the temporary file is gone either way."""
    with replacing(final, suffix=TEMP_SUFFIX) as fd:
        if obj.size <= data.settings.multipart_chunksize:
            body, headers = data.get(obj.full)  # verified against the stored MD5
            _write_all(fd, body)
            size = len(body)
            stored = headers.get(f"x-amz-meta-{MTIME_METADATA}")
        else:  # parallel ranges, verified after the last one
            size, _etag = data.download(obj.full, fd)
            stored = _stored_mtime(data, obj.full)
        mtime = _mtime(stored, obj.mtime)
        os.utime(fd, (mtime, mtime))
        os.fsync(fd)
    return size


def _write_all(fd: int, body: bytes) -> None:
    view = memoryview(body)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _stored_mtime(data: DataPlane, full: str) -> str | None:
    import obstore

    try:
        attributes = obstore.get(data.store, full, options={"head": True}).attributes
    except Exception as exc:
        raise data.error(exc, full, "HeadObject") from exc
    value = attributes.get(MTIME_METADATA)
    return str(value) if value is not None else None


def _mtime(stored: str | None, last_modified: float) -> float:
    """The modification time a sync recorded, else the object's LastModified; a recorded
    value that is not a plausible time is ignored."""
    if stored:
        with contextlib.suppress(ValueError):
            value = float(stored)
            if 0 <= value < 2**33:
                return value
    return last_modified


def remove_stale(root: str) -> int:
    """Remove the temporary files an interrupted restore left under ``root``; returns how
    many. Never follows symbolic links; memory holds one folder's entries at a time."""
    removed = 0
    for path in _temp_files(root):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed += 1
    return removed


def _temp_files(root: str) -> Iterator[str]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except OSError:
                        continue
                    if stat.S_ISDIR(mode):
                        stack.append(entry.path)
                    elif (
                        stat.S_ISREG(mode)
                        and entry.name.startswith(".")
                        and entry.name.endswith(TEMP_SUFFIX)
                    ):
                        yield entry.path
        except OSError:
            continue


class ParentGuard:
    """Creates the folders of a final path under ``root`` and refuses one that would lead
    through a symbolic link or a file out of the tree. Remembers the last folder checked
    (the listing is sorted, so neighbours share it)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.last: str | None = None

    def prepare(self, key: str) -> str:
        """The final path for ``key``; its folder exists and is a real folder in the tree."""
        parts = key.split("/")
        folder = os.path.join(self.root, *parts[:-1])
        if folder != self.last:
            current = self.root
            for part in parts[:-1]:
                current = os.path.join(current, part)
                try:
                    info = os.lstat(current)
                except FileNotFoundError:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(current)
                    info = os.lstat(current)
                if not stat.S_ISDIR(info.st_mode):
                    raise StorageError(
                        f"{key}: {current} is a symbolic link or a file, not a folder; "
                        "move it away and run the restore again"
                    )
            self.last = folder
        return os.path.join(folder, parts[-1])

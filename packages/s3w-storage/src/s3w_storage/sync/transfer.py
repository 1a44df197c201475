"""Upload primitives for the sync executor: every file, small or large, goes through the
data plane (:class:`~s3w_storage.dataplane.DataPlane`) with its checksum and its
modification time.

Many small files may go to worker *processes*, each with its own data plane and a pool of
threads; large files are uploaded in parts by the calling process, and a multipart upload
that fails, is interrupted or whose file changes meanwhile is aborted.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from s3w_storage.dataplane import DataPlane

#: Object metadata (``x-amz-meta-mtime``) holding the file's modification time, so that
#: ``s3w restore`` gives it back; rclone reads and writes the same name.
MTIME_METADATA = "mtime"
#: (relative key, local path) of one file to upload.
Item = tuple[str, str]
#: (relative key, bytes uploaded, error message or None).
Outcome = tuple[str, int, str | None]


def put_one(data: DataPlane, item: Item, on_bytes: Callable[[int], None] | None = None) -> Outcome:
    """Upload one file; the outcome says what happened. ``on_bytes`` hears of each part
    of a large file as it is read."""
    key, path = item
    try:
        metadata = {MTIME_METADATA: mtime_text(os.stat(path).st_mtime)}
    except OSError:
        metadata = None  # the upload reports why the file cannot be read
    size, error = data.put(key, path, metadata=metadata, on_bytes=on_bytes)
    return key, size, error


def mtime_text(mtime: float) -> str:
    """A modification time as the metadata holds it (seconds, as rclone writes it)."""
    return f"{mtime:.9f}".rstrip("0").rstrip(".")


# ----------------------------------------------------------------- worker processes

_WORKER: tuple[DataPlane, ThreadPoolExecutor] | None = None


def init_worker(data: DataPlane, threads: int) -> None:
    """Process-pool initializer: a data plane and a thread pool of this process's own.

    The parent handles Ctrl-C for the whole run, so workers ignore SIGINT.
    """
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = (data, ThreadPoolExecutor(max_workers=threads))


def put_batch(batch: list[Item]) -> list[Outcome]:
    """Worker-process task: PUT each file of ``batch`` on the process's threads."""
    if _WORKER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("put_batch runs only in a process started with init_worker")
    data, pool = _WORKER
    return list(pool.map(lambda item: put_one(data, item), batch))

"""The sync executor: carry out a :class:`SyncPlan` and report a :class:`SyncResult`."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING

from s3w_storage.bounded import bounded_map
from s3w_storage.dataplane import CHANGED, DataPlane
from s3w_storage.errors import StorageError
from s3w_storage.results import Progress, RunResult
from s3w_storage.sync.plan import SyncOptions, SyncPlan, Upload, build_plan
from s3w_storage.sync.transfer import Item, Outcome, init_worker, put_batch, put_one
from s3w_storage.sync.walk import Failure

if TYPE_CHECKING:
    from s3w_storage.objects import Storage

#: Files per task sent to a worker process (bounds IPC cost and progress granularity).
BATCH = 24


@dataclass
class SyncResult(RunResult):
    """What a sync did. ``ok`` is False when anything failed or a delete was refused."""

    PUBLISHED = "uploaded deleted unchanged failed=failures local=local_files"
    PUBLISHED_BYTES = "uploaded=uploaded_bytes"

    root: str
    local_files: int
    remote_objects: int
    planned_uploads: int
    planned_bytes: int
    planned_deletes: int
    uploaded: int = 0
    uploaded_bytes: int = 0
    deleted: int = 0
    delete_refused: str | None = None
    skipped_links: int = 0
    skipped_special: int = 0
    excluded: int = 0
    #: Files that changed while they were read: not stored, sent again on the next run.
    changed_during_upload: int = 0
    processes: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and self.delete_refused is None


def sync(
    storage: Storage,
    media_root: str | os.PathLike[str],
    options: SyncOptions | None = None,
    *,
    progress: Progress | None = None,
    on_plan: Callable[[SyncPlan], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> SyncResult:
    """Mirror ``media_root`` into the storage's bucket and prefix: walk, list, diff, upload,
    then (with ``options.delete``) delete objects that have no local file."""
    options = options or SyncOptions()
    started = time.monotonic()
    plan = build_plan(storage, media_root, options, on_phase=on_phase)
    if on_plan is not None:
        on_plan(plan)
    if on_phase:
        on_phase("uploading")
    result = execute(storage, plan, options, progress=progress)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def execute(
    storage: Storage,
    plan: SyncPlan,
    options: SyncOptions | None = None,
    *,
    progress: Progress | None = None,
) -> SyncResult:
    """Carry out ``plan``. Per-file failures are collected and the rest goes on; deletes run
    only when every upload succeeded and every local entry could be read."""
    options = options or SyncOptions()
    result = SyncResult(
        root=plan.root,
        dry_run=options.dry_run,
        local_files=plan.local_files,
        remote_objects=plan.remote_objects,
        planned_uploads=len(plan.uploads),
        planned_bytes=plan.upload_bytes,
        planned_deletes=len(plan.deletes),
        unchanged=plan.unchanged,
        failures=list(plan.errors),
        skipped_links=plan.skipped_links,
        skipped_special=plan.skipped_special,
        excluded=plan.excluded,
    )
    if options.dry_run:
        return result
    report = progress or (lambda files, size: None)

    def record(outcome: Outcome) -> None:
        key, size, error = outcome
        if error is None:
            result.uploaded += 1
            result.uploaded_bytes += size
        else:
            if error.startswith(CHANGED):
                result.changed_during_upload += 1
            result.failures.append(Failure(key, error))

    jobs = options.jobs or storage.settings.max_concurrency
    threshold = storage.settings.multipart_threshold
    small = [u for u in plan.uploads if u.file.size < threshold]
    large = [u for u in plan.uploads if u.file.size >= threshold]
    processes = _processes(options, len(small))
    result.processes = processes
    # The listing's data plane (and its open connections) when it has the same concurrency.
    same = jobs == storage.settings.max_concurrency
    data = (
        storage.data if same or not plan.uploads else DataPlane(storage.settings, concurrency=jobs)
    )
    if processes:
        for outcome in _put_in_processes(data, small, processes, jobs, report):
            record(outcome)
    elif small:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="s3w-put") as pool:
            items = ((u.file.key, u.file.path) for u in small)
            # A window of calls in flight, not one per file: memory stays flat however
            # many files change.
            for outcome in bounded_map(pool, lambda item: put_one(data, item), items, jobs * 4):
                record(outcome)
                report(1, outcome[1])
    for upload in large:
        item = (upload.file.key, upload.file.path)
        outcome = put_one(data, item, on_bytes=lambda n: report(0, n))
        record(outcome)
        report(1, 0)
    if options.delete and plan.deletes:
        _delete(storage, plan, options, result)
    return result


def _processes(options: SyncOptions, small_files: int) -> int:
    """Worker processes only when asked for: the data plane signs, hashes and sends outside
    the GIL, so one process's threads keep the store busy, and spawned workers would first
    spend their start-up importing everything again."""
    if options.processes is None or not small_files:
        return 0
    return max(0, options.processes)


def _put_in_processes(
    data: DataPlane, uploads: list[Upload], processes: int, jobs: int, report: Progress
) -> Iterator[Outcome]:
    """Small files in batches across worker processes; yields outcomes as batches finish."""
    batches: list[list[Item]] = [
        [(u.file.key, u.file.path) for u in uploads[i : i + BATCH]]
        for i in range(0, len(uploads), BATCH)
    ]
    threads = max(1, jobs)
    # spawn: a clean interpreter per worker, safe whatever threads the caller runs.
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(
        max_workers=processes,
        mp_context=context,
        initializer=init_worker,
        initargs=(data, threads),
    )
    pending: dict[Future[list[Outcome]], list[Item]] = {}
    queue = iter(batches)
    try:
        # Keep each worker two batches ahead; submitting everything at once would pickle
        # every batch up front and hold it in memory.
        for batch in queue:
            pending[executor.submit(put_batch, batch)] = batch
            if len(pending) >= processes * 4:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                batch = pending.pop(future)
                try:
                    outcomes = future.result()
                except BrokenProcessPool as exc:
                    outcomes = [(key, 0, f"upload worker died: {exc}") for key, _path in batch]
                yield from outcomes
                report(len(outcomes), sum(o[1] for o in outcomes))
                nxt = next(queue, None)
                if nxt is not None:
                    pending[executor.submit(put_batch, nxt)] = nxt
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def delete_refusal(failures: int, deletes: int, max_delete: int) -> str | None:
    """Why ``deletes`` objects without a local file may not be deleted (None: they may): a
    file failed or could not be read, or there are more than ``max_delete``."""
    if failures:
        return (
            f"{failures} file(s) failed or could not be read, so the "
            f"{deletes} remote object(s) without a local file were not deleted"
        )
    if deletes > max_delete:
        return (
            f"{deletes} remote objects have no local file, more than the "
            f"--max-delete bound of {max_delete}: nothing was deleted"
        )
    return None


def _delete(storage: Storage, plan: SyncPlan, options: SyncOptions, result: SyncResult) -> None:
    result.delete_refused = delete_refusal(
        len(result.failures), len(plan.deletes), options.max_delete
    )
    if result.delete_refused is not None:
        return
    try:
        outcome = storage.delete(plan.deletes)
    except StorageError as exc:
        result.failures.append(Failure("(delete)", str(exc)))
        return
    result.deleted = outcome.deleted
    result.failures.extend(Failure(key, f"{code}: {msg}") for key, code, msg in outcome.errors)

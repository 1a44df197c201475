"""``s3w_sync_shard``: one folder prefix of a distributed sync, run by the ``s3w sync`` engine.

The task is s3w's own (Papermerge core never sends it), so its name is kept out of
:mod:`s3w_tasks.contract`; it runs only on a signed message (:mod:`s3w_tasks.fleet.authority`), and this
module is imported only by a worker that holds ``S3W_FLEET_KEY``. It walks the worker's ``PM_MEDIA_ROOT`` and lists the bucket only
under its folder prefixes (``SyncOptions.within``, one folder after another), diffs and uploads exactly as a local sync
does, and pushes its result to the run's Redis record (:mod:`s3w_tasks.fleet.runs`). Running a shard
twice is harmless: the second run finds the first one's uploads unchanged.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, Final

from celery import shared_task

from s3w_storage.errors import InvalidArgument, InvalidKey
from s3w_storage.sync import SyncOptions, SyncResult, build_plan, execute
from s3w_tasks.errors import PermanentError, TaskError, clean, describe, is_transient
from s3w_tasks.fleet import authority as fleet
from s3w_tasks.fleet import runs
from s3w_tasks.fleet.sync_sums import merge_results
from s3w_tasks.running import EXPECTED, ContractTask, run_task

if TYPE_CHECKING:
    from s3w_storage.objects import Storage
    from s3w_storage.results import Progress

log = logging.getLogger(__name__)

SYNC_SHARD: Final = fleet.SYNC_SHARD
#: s3w's own task names: registered on a fleet worker, not part of the Papermerge contract.
TASK_NAMES: Final[frozenset[str]] = fleet.TASK_NAMES
#: A shard whose files failed (an outage mid-shard) runs again this many times before its
#: failures are reported; only the failed files are uploaded again.
FILE_FAILURE_RETRIES: Final = 2
PHASES: Final = ("sync", "delete")
#: Folders of one shard synced side by side (each with its share of the request threads).
FOLDERS_AT_ONCE: Final = 8
#: The SyncOptions fields a coordinator may send (``within`` and ``processes`` are the task's).
SENT_OPTIONS: Final = fleet.SENT_OPTIONS
options_to_kwargs = fleet.options_to_kwargs


class ShardIncomplete(TaskError):
    """Some files of the shard failed; running the shard again may upload them."""

    transient = True


def options_from_kwargs(data: dict[str, Any] | None) -> SyncOptions:
    known = {f.name for f in fields(SyncOptions)} & set(SENT_OPTIONS)
    given = {k: v for k, v in (data or {}).items() if k in known}
    for name in ("include", "exclude"):
        if name in given:
            given[name] = tuple(given[name])
    return SyncOptions(**given)


def sync_shard(
    folders: str | list[str],
    options: SyncOptions,
    *,
    phase: str = "sync",
    storage: Storage | None = None,
    progress: Progress | None = None,
    expect_local: int | None = None,
) -> SyncResult:
    """Sync the folder prefixes ``folders`` ('docvers/ab/', ...) of the media root, one after
    another, and sum the results (without Celery).

    Phase ``sync`` uploads and, with ``options.delete``, only counts the objects to delete;
    phase ``delete`` (sent once every shard's uploads succeeded) deletes them, refusing more
    than ``options.max_delete`` in all, and nothing at all when this media root holds fewer
    files in the shard than ``expect_local`` (what the coordinator's media root holds: a
    worker whose media root is not a full mirror must not delete what it does not see). The
    worker runs one process per shard: no upload processes.
    """
    if phase not in PHASES:
        raise PermanentError(f"unknown shard phase {phase!r} (expected one of {PHASES})")
    if storage is None:
        from s3w_storage.objects import get_storage

        storage = get_storage()
    listed = [folders] if isinstance(folders, str) else list(folders)
    if not listed:
        raise PermanentError("a shard with no folders")
    jobs = options.jobs or storage.settings.max_concurrency

    def one(folder: str, budget: int, threads: int) -> SyncResult:
        shard = replace(options, within=folder, processes=0, max_delete=budget, jobs=threads)
        plan = build_plan(storage, storage.settings.media_root, shard)
        if phase == "sync":
            shard = replace(shard, delete=False)
        return execute(storage, plan, shard, progress=progress)

    results: list[SyncResult] = []
    if phase == "delete":  # one folder after another, within one bound for them all
        if expect_local is None:
            raise PermanentError("a delete phase without the coordinator's file count")
        plans = [
            build_plan(
                storage,
                storage.settings.media_root,
                replace(options, within=folder, processes=0, jobs=jobs),
            )
            for folder in listed
        ]
        held = sum(plan.local_files for plan in plans)
        if held < expect_local:
            raise PermanentError(
                f"this worker's media root holds {held} of the {expect_local} files the "
                f"coordinator has in {', '.join(listed[:3])}: it is not a full mirror "
                "(PM_MEDIA_ROOT must be the same files on every fleet worker); nothing deleted"
            )
        budget = options.max_delete
        for folder, plan in zip(listed, plans, strict=True):
            shard = replace(options, within=folder, processes=0, max_delete=budget, jobs=jobs)
            results.append(execute(storage, plan, shard, progress=progress))
            budget = max(0, budget - results[-1].deleted)
    else:
        # Folders side by side: each costs a listing and an upload round trip, so over a
        # remote store one after another would leave the worker waiting.
        at_once = min(len(listed), FOLDERS_AT_ONCE)
        threads = max(2, jobs // at_once)
        with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="s3w-shard") as pool:
            results = list(pool.map(lambda f: one(f, options.max_delete, threads), listed))
    total = results[0]
    for result in results[1:]:
        total = merge_results(total, result)
    return total


def shard_record(within: str, phase: str, attempt: int, result: SyncResult) -> dict[str, Any]:
    return {"shard": within, "phase": phase, "attempt": attempt, "result": result.to_dict()}


def uploaded_since(storage: Storage, folders: list[str], since: float) -> tuple[int, int]:
    """(objects, bytes) in ``folders`` whose LastModified is at or after ``since`` (the S3
    server's clock at the start of the run): what this run put there, whichever attempt."""
    from s3w_storage.sync import list_remote

    count = size = 0
    for folder in folders:
        for obj in list_remote(storage, within=folder, shards=1).values():
            if obj.mtime >= since:
                count += 1
                size += obj.size
    return count, size


def error_record(within: str, phase: str, attempt: int, message: str) -> dict[str, Any]:
    return {"shard": within, "phase": phase, "attempt": attempt, "error": message}


def _give_up(kwargs: dict[str, Any], message: str, task_id: str) -> None:
    """The task was abandoned outside its code (time limit, lost worker): tell the coordinator."""
    run_id, within = kwargs.get("run_id"), kwargs.get("within")
    key = fleet.fleet_key()
    if not run_id or within is None or key is None:
        return
    try:
        fleet.verify(SYNC_SHARD, kwargs, key)
    except fleet.FleetRefused:
        return  # not the operator's run: nothing to report to
    import redis

    try:
        runs.report(
            runs.connect(), run_id, error_record(within, kwargs.get("phase") or "sync", 0, message)
        )
    except redis.RedisError as exc:
        log.error(
            "shard %s of run %s could not report its failure: %s", clean(within), clean(run_id), exc
        )


@shared_task(  # type: ignore[untyped-decorator]
    name=SYNC_SHARD, bind=True, base=ContractTask, give_up=_give_up
)
def sync_shard_task(
    self: ContractTask,
    run_id: str = "",
    within: str = "",
    folders: list[str] | None = None,
    bucket: str = "",
    prefix: str = "",
    options: dict[str, Any] | None = None,
    phase: str = "sync",
    since: float | None = None,
    local_files: int | None = None,
    **extra: Any,
) -> Any:
    import redis

    signed = {k: v for k, v in extra.items() if k not in (fleet.SIGNATURE, fleet.EXPIRES)}
    if signed:
        log.warning(
            "task=%s ignores unknown kwargs: %s", self.name, clean(", ".join(sorted(signed)))
        )
    attempt = 0

    def call(last: bool) -> dict[str, Any]:
        nonlocal attempt
        client: Any = None
        # First of all: a message the operator did not sign does nothing, reports nothing.
        fleet.verify(SYNC_SHARD, dict(self.request.kwargs or {}), fleet.require_key())
        try:
            client = runs.connect()
            if runs.cancelled(client, run_id):
                # The coordinator was interrupted, or the run ended before this (late) delivery.
                log.info(
                    "shard %s of run %s: the run is over, nothing to do",
                    clean(within),
                    clean(run_id),
                )
                return {"shard": within, "cancelled": True}
            attempt = runs.start(client, run_id, f"{phase}:{within}")
            with runs.Heartbeat(client, run_id):
                result, record = _sync(client, last)
            runs.report(client, run_id, record)
        except redis.RedisError as exc:
            raise ShardIncomplete(f"cannot reach the progress Redis: {exc}") from None
        except EXPECTED as exc:
            if client is not None and not (is_transient(exc) and not last):
                runs.report(client, run_id, error_record(within, phase, attempt, describe(exc)))
            raise
        return {"shard": within, "uploaded": result.uploaded, "failures": len(result.failures)}

    def _sync(client: Any, last: bool) -> tuple[SyncResult, dict[str, Any]]:
        from s3w_storage.objects import get_storage

        storage = get_storage()
        if (storage.bucket, storage.prefix) != (bucket, prefix):
            raise PermanentError(
                f"this worker syncs to s3://{storage.bucket}/{storage.prefix} but the run is for "
                f"s3://{bucket}/{prefix}; give workers and coordinator the same settings"
            )
        live = runs.LiveCounter(client, run_id)
        try:
            result = sync_shard(
                folders or within,
                options_from_kwargs(options),
                phase=phase,
                storage=storage,
                progress=live,
                expect_local=local_files,
            )
        except (InvalidArgument, InvalidKey) as exc:
            raise PermanentError(describe(exc)) from None
        finally:
            live.flush()
        retries = self.request.retries or 0
        if result.failures and not last and retries < FILE_FAILURE_RETRIES:
            raise ShardIncomplete(
                f"{len(result.failures)} file(s) failed, e.g. {result.failures[0].message}"
            )
        record = shard_record(within, phase, attempt, result)
        if attempt > 1 and since is not None and not result.dry_run:
            # An earlier attempt of this shard died or failed after putting files, which this
            # one found unchanged: tell the coordinator how many, from the bucket itself.
            count, size = uploaded_since(storage, folders or [within], since)
            record["earlier_uploads"] = max(0, count - result.uploaded)
            record["earlier_bytes"] = max(0, size - result.uploaded_bytes)
        return result, record

    return run_task(self, {"run": run_id, "shard": within, "phase": phase}, call)

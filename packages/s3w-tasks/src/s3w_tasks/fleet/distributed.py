"""The distributed-sync coordinator: shard tasks sent, their progress shown, results summed.

The media root is cut into folder shards, one ``s3w_sync_shard`` task per shard goes to the
fleet queue, progress is shown as shards report, and the results are summed.

    result = distributed_sync(options=SyncOptions(delete=True), on_progress=print)

Where the run is cut is :mod:`s3w_tasks.fleet.shard_layout`; the results are summed by
:mod:`s3w_tasks.fleet.sync_sums`; messages go out through :mod:`s3w_tasks.fleet.broker`. Nothing here
holds the file list: the coordinator keeps the shard names and running sums; each shard
task's memory is bounded by its shard.

With ``delete``, shards first upload and count what they would delete; only when every shard
succeeded and the total is within ``max_delete`` does a second round delete, shard by shard,
exactly as a local ``s3w sync --delete`` would refuse or go ahead.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from s3w_storage.results import Tally
from s3w_storage.sync import SyncOptions, check_media_root
from s3w_storage.sync.run import delete_refusal
from s3w_tasks.errors import TaskError
from s3w_tasks.fleet import runs
from s3w_tasks.fleet.shard_layout import Layout, group_folders, local_count, plan_layout, sync_loose
from s3w_tasks.fleet.sync_sums import DistributedSyncResult, RunSums

if TYPE_CHECKING:
    from s3w_storage.objects import Storage

#: Seconds of quiet (queue empty, no shard running, uploading or finishing) after which the
#: unfinished shards are sent again; and how many times one shard is sent again at most.
RESEND_AFTER = 60.0
MAX_RESENDS = 3


@dataclass
class RunProgress:
    """What the coordinator knows so far; handed to ``on_progress`` about twice a second."""

    run_id: str
    queue: str
    phase: str  # "sync" | "delete"
    shards: int
    shards_done: int = 0
    #: Files the shards have stored so far, and their bytes.
    done: Tally = field(default_factory=Tally)
    failures: int = 0
    #: Shards sent again because their message was lost or held by a dead worker.
    resent: int = 0
    started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def seconds(self) -> float:
        """Seconds since the shards were first sent (both phases)."""
        return time.monotonic() - self.started

    @property
    def files_per_second(self) -> float:
        seconds = self.seconds
        return self.done.count / seconds if seconds > 0 else 0.0

    @property
    def bytes_per_second(self) -> float:
        seconds = self.seconds
        return self.done.bytes / seconds if seconds > 0 else 0.0


class DistributedSyncError(TaskError):
    """The run could not go on (no worker answered within the stall timeout)."""


def distributed_sync(
    media_root: str | os.PathLike[str] | None = None,
    options: SyncOptions | None = None,
    *,
    storage: Storage | None = None,
    queue: str | None = None,
    on_progress: Callable[[RunProgress], None] | None = None,
    on_layout: Callable[[Layout], None] | None = None,
    poll: float = 0.5,
    stall_timeout: float | None = None,
    resend_after: float | None = RESEND_AFTER,
    redis_client: Any = None,
) -> DistributedSyncResult:
    """Sync the media root to the bucket through the Celery workers; see the module doc.

    The workers use their own ``PM_MEDIA_ROOT`` and storage settings (they must see the same
    files and name the same bucket and prefix; a worker that does not refuses the shard).
    ``stall_timeout``: give up when no shard finished and no file was uploaded for that
    many seconds (None: wait for the workers however long it takes).
    ``resend_after``: when shards are unfinished while the broker's queue is empty and no
    shard has run, uploaded or finished for that many seconds, send those shards again, at
    most :data:`MAX_RESENDS` times each (None: never). A Redis broker loses a message whose
    worker is killed while fetching it, and gives a killed worker's message back only after
    the visibility timeout; a shard that runs twice finds its files unchanged.
    """
    from s3w_storage.objects import get_storage
    from s3w_tasks.fleet import authority as fleet
    from s3w_tasks.fleet.broker import sender_app, watching
    from s3w_tasks.settings import get_settings

    key = fleet.require_key()  # before anything: a run nobody can verify would only stall
    settings = get_settings()

    options = options or SyncOptions()
    storage = storage or get_storage()
    root = check_media_root(media_root if media_root is not None else storage.settings.media_root)
    queue = queue or fleet.fleet_queue()
    client = redis_client or runs.connect()
    run_id = uuid.uuid4().hex
    started = time.monotonic()
    layout = plan_layout(storage, root, remote_folders=options.delete)
    if on_layout is not None:
        on_layout(layout)
    sums = RunSums(root, options.dry_run)
    groups = {group[0]: group for group in group_folders(root, layout.shards)}
    progress = RunProgress(run_id, queue, "sync", len(groups))
    common = {
        "run_id": run_id,
        "bucket": storage.bucket,
        "prefix": storage.prefix,
        "since": storage.server_time(),
    }
    sent_options = fleet.options_to_kwargs(options)

    stack = ExitStack()  # the sender app and its connection, closed when the run ends
    sender = sender_app()
    stack.callback(sender.close)
    sent: dict[tuple[str, str], dict[str, Any]] = {}
    resends: dict[tuple[str, str], int] = {}

    def send(shard: str, phase: str, shard_options: dict[str, Any]) -> None:
        kwargs = {
            **common,
            "within": shard,
            "folders": groups[shard],
            "options": shard_options,
            "phase": phase,
        }
        if phase == "delete":  # a worker holding fewer of these files refuses to delete
            kwargs["local_files"] = local_count(root, groups[shard], options)
        sent[phase, shard] = shard_options
        signed = fleet.sign(fleet.SYNC_SHARD, kwargs, key, ttl=settings.fleet_message_ttl)
        sender.send_task(fleet.SYNC_SHARD, kwargs=signed, queue=queue, connection=watch.connection)

    def resend(shards: list[str]) -> int:
        """Send the unfinished ``shards`` again if nothing is left in the queue."""
        if resend_after is None or not settings.is_redis_broker or watch.depth_or_none() != 0:
            return 0  # still queued, or unknown, or a broker that loses no message
        count = 0
        for shard in shards:
            key = (progress.phase, shard)
            if resends.get(key, 0) < MAX_RESENDS:
                resends[key] = resends.get(key, 0) + 1
                send(shard, progress.phase, sent[key])
                count += 1
        return count

    rules = Waiting(poll, stall_timeout, resend_after, resend)

    try:
        watch = stack.enter_context(watching(sender, queue))
        for shard in groups:
            send(shard, "sync", sent_options)
        loose = sync_loose(storage, layout, root, options, phase="sync")
        if loose is not None:
            sums.add(loose, phase="sync", shard=None)
        _collect(client, run_id, list(groups), sums, progress, on_progress, rules)
        t = sums.total
        if options.delete and not options.dry_run and t.planned_deletes:
            t.delete_refused = delete_refusal(
                len(t.failures), t.planned_deletes, options.max_delete
            )
            if t.delete_refused is None:
                targets = sorted(sums.per_shard_deletes)
                progress.phase, progress.shards, progress.shards_done = "delete", len(targets), 0
                for shard in targets:
                    bound = sums.per_shard_deletes[shard]
                    send(shard, "delete", {**sent_options, "max_delete": bound})
                if loose is not None and loose.planned_deletes:
                    bounded = replace(options, max_delete=loose.planned_deletes)
                    again = sync_loose(storage, layout, root, bounded, phase="delete")
                    if again is not None:
                        sums.add(again, phase="delete", shard=None)
                _collect(client, run_id, targets, sums, progress, on_progress, rules)
    except KeyboardInterrupt:
        runs.cancel(client, run_id)  # shards not yet started return at once
        raise
    finally:
        stack.close()
    retried = runs.restarted(client, run_id)
    runs.forget(client, run_id)
    result = sums.finish(run_id, started)
    result.shards, result.folders, result.shards_retried = len(groups), len(layout.shards), retried
    result.shards_resent = sum(resends.values())
    return result


@dataclass
class Waiting:
    """How the coordinator waits for shards: poll interval, stall and resend rules."""

    poll: float
    stall_timeout: float | None
    resend_after: float | None
    resend: Callable[[list[str]], int]


def _live(client: Any, run_id: str) -> tuple[int, int]:
    files, size = client.hmget(runs.keys(run_id)[0], "files", "bytes")
    return int(files or 0), int(size or 0)


def _results(client: Any, run_id: str, wait: float) -> Iterator[dict[str, Any]]:
    """Shard results pushed since the last call (waits up to ``wait`` s for the first)."""
    done = runs.keys(run_id)[1]
    first = client.blpop([done], timeout=max(wait, 0.01))
    if first is None:
        return
    yield json.loads(first[1])
    while (more := client.lpop(done)) is not None:
        yield json.loads(more)


def _collect(
    client: Any,
    run_id: str,
    shards: list[str],
    sums: RunSums,
    progress: RunProgress,
    on_progress: Callable[[RunProgress], None] | None,
    rules: Waiting,
) -> None:
    """Wait until every shard of this phase has reported; sum as results arrive."""
    waiting = set(shards)
    last_change = last_resend = time.monotonic()
    seen_files = seen_beats = -1
    while True:
        for record in _results(client, run_id, rules.poll if waiting else 0):
            shard, phase = record.get("shard"), record.get("phase")
            if shard not in waiting or phase != progress.phase:
                continue  # a duplicate delivery's second report, or another phase's
            waiting.discard(shard)
            progress.shards_done += 1
            last_change = time.monotonic()
            if "error" in record:
                sums.fail(shard, str(record["error"]))
                progress.failures += 1
            else:
                progress.failures += sums.add_record(record, phase=phase, shard=shard)
        files, size = _live(client, run_id)
        beats = runs.beats(client, run_id)
        if (files, beats) != (seen_files, seen_beats):
            seen_files, seen_beats, last_change = files, beats, time.monotonic()
        progress.done = Tally(files, size)
        if on_progress is not None:
            on_progress(progress)
        if not waiting:
            return
        now = time.monotonic()
        if (
            rules.resend_after is not None
            and now - max(last_change, last_resend) > rules.resend_after
        ):
            last_resend = now
            progress.resent += rules.resend(sorted(waiting))
        if rules.stall_timeout is not None and now - last_change > rules.stall_timeout:
            raise DistributedSyncError(
                f"{len(waiting)} of {len(shards)} shard(s) unfinished and nothing moved for "
                f"{rules.stall_timeout:.0f} s: is a worker consuming queue {progress.queue!r} "
                "with the same PM_MEDIA_ROOT and bucket?"
            )

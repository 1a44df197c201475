"""The distributed-sync coordinator: cut the media root into folder shards, send one
``s3w_sync_shard`` task per shard to the s3 queue, show progress, and sum the results.

    result = distributed_sync(options=SyncOptions(delete=True), on_progress=print)

Shards are the folders where the tree fans out (``docvers/00/`` ... ``docvers/ff/``,
``thumbnails/jpg/00/``, ``previews/pages/00/``, ``ocr/pages/00/``, and any other top-level
folder), found with a few ``scandir`` calls and, for ``--delete``, delimiter listings of the
same levels (so remote-only folders are covered). Files lying directly in the levels above
the shards (normally none) are synced by the coordinator itself with the same engine. Nothing
here holds the file list: the coordinator keeps the shard names and running sums; each shard
task's memory is bounded by its shard.

With ``delete``, shards first upload and count what they would delete; only when every shard
succeeded and the total is within ``max_delete`` does a second round delete, shard by shard,
exactly as a local ``s3w sync --delete`` would refuse or go ahead.
"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from s3w_storage.sync import (
    Failure,
    KeyFilter,
    LocalFile,
    LocalTree,
    RemoteObject,
    SyncOptions,
    SyncResult,
    check_media_root,
    execute,
)
from s3w_storage.sync.plan import diff
from s3w_storage.sync.walk import PARTIAL_SUFFIX
from s3w_tasks import runs
from s3w_tasks.errors import TaskError

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
    files: int = 0
    bytes: int = 0
    failures: int = 0
    retried: int = 0
    #: Shards sent again because their message was lost or held by a dead worker.
    resent: int = 0
    seconds: float = 0.0

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


@dataclass
class DistributedSyncResult(SyncResult):
    """A :class:`SyncResult` summed over the shards, plus how the run was spread."""

    run_id: str = ""
    shards: int = 0
    #: Folder prefixes the shards covered (``shards`` counts the tasks).
    folders: int = 0
    #: Shards started more than once (a worker died under them, or their files failed and
    #: they ran again).
    shards_retried: int = 0
    #: Shard tasks the coordinator sent again (see ``resend_after``).
    shards_resent: int = 0


@dataclass
class Layout:
    """Where the run is cut: shard folder prefixes, and the files directly in the levels above."""

    shards: list[str] = field(default_factory=list)
    #: level ('' or 'docvers/') -> (local files directly in it, remote objects directly in it)
    loose: dict[str, tuple[list[LocalFile], dict[str, RemoteObject]]] = field(default_factory=dict)
    skipped_links: int = 0
    skipped_special: int = 0
    errors: list[Failure] = field(default_factory=list)


class DistributedSyncError(TaskError):
    """The run could not go on (no worker answered within the stall timeout)."""


# ------------------------------------------------------------------------------ layout


def _scan_level(root: str, rel: str, layout: Layout) -> tuple[list[str], list[LocalFile]]:
    """Sub-folder names and regular files directly in ``root/rel`` (the walk's rules)."""
    path = os.path.join(root, *rel.split("/")) if rel else root
    dirs: list[str] = []
    files: list[LocalFile] = []
    if os.path.islink(path.rstrip(os.sep)) or not os.path.isdir(path):
        return dirs, files
    try:
        entries = list(os.scandir(path))
    except OSError as exc:
        layout.errors.append(Failure(rel.rstrip("/") or ".", f"cannot list {path}: {exc.strerror}"))
        return dirs, files
    for entry in entries:
        key = rel + entry.name
        try:
            if entry.is_symlink():
                layout.skipped_links += 1
                continue
            if entry.is_dir(follow_symlinks=False):
                dirs.append(entry.name)
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError as exc:
            layout.errors.append(Failure(key, f"cannot stat {entry.path}: {exc.strerror}"))
            continue
        if not stat.S_ISREG(info.st_mode):
            layout.skipped_special += 1
        elif not (entry.name.startswith(".") and entry.name.endswith(PARTIAL_SUFFIX)):
            files.append(LocalFile(key, entry.path, info.st_size, info.st_mtime))
    return sorted(dirs), files


def _list_level(storage: Storage, rel: str) -> tuple[list[str], dict[str, RemoteObject]]:
    """Remote sub-folder names and objects directly under ``rel`` (delimiter listing)."""
    head = storage.prefix + "/" if storage.prefix else ""
    dirs: list[str] = []
    objects: dict[str, RemoteObject] = {}
    from botocore.exceptions import BotoCoreError, ClientError

    from s3w_storage.errors import translate

    pages = storage.client.get_paginator("list_objects_v2").paginate(
        Bucket=storage.bucket, Prefix=head + rel, Delimiter="/"
    )
    try:
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(head) + len(rel) :].rstrip("/")
                if name:
                    dirs.append(name)
            for item in page.get("Contents", []):
                objects[item["Key"][len(head) :]] = RemoteObject(
                    item["Size"], item["LastModified"].timestamp(), item["ETag"].strip('"')
                )
    except (ClientError, BotoCoreError) as exc:
        settings = storage.settings
        raise translate(
            exc,
            bucket=storage.bucket,
            key=head + rel,
            endpoint=settings.effective_endpoint,
            credentials_hint=settings.credentials_hint,
        ) from exc
    return dirs, objects


def plan_layout(storage: Storage, root: str, *, remote_folders: bool) -> Layout:
    """The shards of a run (sorted) and the loose files above them.

    ``remote_folders`` (for ``--delete``) adds folders that exist only in the bucket.
    """
    layout = Layout()
    stack = [("", 0)]
    while stack:
        rel, depth = stack.pop()
        local_dirs, local_files = _scan_level(root, rel, layout)
        remote_dirs: list[str] = []
        remote_objects: dict[str, RemoteObject] = {}
        if remote_folders or local_files:
            remote_dirs, remote_objects = _list_level(storage, rel)
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


def _sync_loose(
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


# ------------------------------------------------------------------------- the run


class _Sums:
    """Running sums of shard results (the coordinator's only per-run state besides names)."""

    def __init__(self, root: str, dry_run: bool) -> None:
        self.total = SyncResult(
            root=root,
            dry_run=dry_run,
            local_files=0,
            remote_objects=0,
            planned_uploads=0,
            planned_bytes=0,
            planned_deletes=0,
            unchanged=0,
        )
        self.per_shard_deletes: dict[str, int] = {}
        #: Files put by attempts that died or failed afterwards (reported by the bucket).
        self.earlier_uploads = 0
        self.earlier_bytes = 0

    def add(self, result: dict[str, Any], *, phase: str, shard: str | None) -> int:
        """Add one shard's result (``shard`` None: the coordinator's loose files); returns
        its failure count."""
        t = self.total
        if phase == "sync":
            for name in (
                "local_files",
                "remote_objects",
                "planned_uploads",
                "planned_bytes",
                "planned_deletes",
                "unchanged",
                "skipped_links",
                "skipped_special",
                "excluded",
            ):
                setattr(t, name, getattr(t, name) + int(result.get(name) or 0))
            if result.get("planned_deletes") and shard is not None:
                self.per_shard_deletes[shard] = int(result["planned_deletes"])
        t.uploaded += int(result.get("uploaded") or 0)
        t.uploaded_bytes += int(result.get("uploaded_bytes") or 0)
        t.deleted += int(result.get("deleted") or 0)
        failures = [Failure(f["key"], f["error"]) for f in result.get("failures") or []]
        if result.get("delete_refused"):
            where = shard if shard is not None else "loose files"
            failures.append(Failure(f"(delete {where})", str(result["delete_refused"])))
        t.failures.extend(failures)
        return len(failures)

    def add_local(self, result: SyncResult, *, phase: str) -> None:
        self.add(result.to_dict(), phase=phase, shard=None)


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
    from s3w_tasks import fleet
    from s3w_tasks.settings import get_settings

    key = fleet.require_key()  # before anything: a run nobody can verify would only stall
    ttl = get_settings().fleet_message_ttl

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
    sums = _Sums(root, options.dry_run)
    groups = {group[0]: group for group in group_folders(root, layout.shards)}
    progress = RunProgress(run_id, queue, "sync", len(groups))
    common = {
        "run_id": run_id,
        "bucket": storage.bucket,
        "prefix": storage.prefix,
        "since": _server_time(storage),
    }
    sent_options = fleet.options_to_kwargs(options)

    sender = sender_app()
    queued = queue_length(queue)
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
        signed = fleet.sign(fleet.SYNC_SHARD, kwargs, key, ttl=ttl)
        sender.send_task(fleet.SYNC_SHARD, kwargs=signed, queue=queue)

    def resend(shards: list[str]) -> int:
        """Send the unfinished ``shards`` again if nothing is left in the queue."""
        if resend_after is None or queued() != 0:
            return 0  # still queued (or unknown: a non-Redis broker loses no message)
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
        for shard in groups:
            send(shard, "sync", sent_options)
        loose = _sync_loose(storage, layout, root, options, phase="sync")
        if loose is not None:
            sums.add_local(loose, phase="sync")
        _collect(client, run_id, list(groups), sums, progress, on_progress, rules)
        t = sums.total
        if options.delete and not options.dry_run and t.planned_deletes:
            if t.failures:
                t.delete_refused = (
                    f"{len(t.failures)} file(s) failed or could not be read, so the "
                    f"{t.planned_deletes} remote object(s) without a local file were not deleted"
                )
            elif t.planned_deletes > options.max_delete:
                t.delete_refused = (
                    f"{t.planned_deletes} remote objects have no local file, more than the "
                    f"--max-delete bound of {options.max_delete}: nothing was deleted"
                )
            else:
                targets = sorted(sums.per_shard_deletes)
                progress.phase, progress.shards, progress.shards_done = "delete", len(targets), 0
                for shard in targets:
                    bound = sums.per_shard_deletes[shard]
                    send(shard, "delete", {**sent_options, "max_delete": bound})
                if loose is not None and loose.planned_deletes:
                    bounded = replace(options, max_delete=loose.planned_deletes)
                    again = _sync_loose(storage, layout, root, bounded, phase="delete")
                    if again is not None:
                        sums.add_local(again, phase="delete")
                _collect(client, run_id, targets, sums, progress, on_progress, rules)
    except KeyboardInterrupt:
        runs.cancel(client, run_id)  # shards not yet started return at once
        raise
    finally:
        sender.close()
    retried = runs.restarted(client, run_id)
    runs.forget(client, run_id)
    result = _finish(sums, run_id, started)
    result.shards, result.folders, result.shards_retried = len(groups), len(layout.shards), retried
    result.shards_resent = sum(resends.values())
    return result


def local_count(root: str, folders: list[str], options: SyncOptions) -> int:
    """Regular files (after the include/exclude filters) the coordinator's media root holds
    in ``folders``: the count a worker must match before it deletes there."""
    from s3w_storage.sync.walk import walk

    key_filter = KeyFilter(options.include, options.exclude)
    return sum(len(walk(root, key_filter, within=folder).files) for folder in folders)


@dataclass
class Waiting:
    """How the coordinator waits for shards: poll interval, stall and resend rules."""

    poll: float
    stall_timeout: float | None
    resend_after: float | None
    resend: Callable[[list[str]], int]


def queue_length(queue: str) -> Callable[[], int | None]:
    """A function returning the messages waiting in ``queue`` (all of kombu's priority
    lists), or None when the broker is not Redis or cannot be asked."""
    from s3w_tasks.settings import get_settings

    settings = get_settings()
    if not settings.is_redis_broker:
        return lambda: None
    import redis

    client = redis.Redis.from_url(settings.broker_url, socket_timeout=30, socket_connect_timeout=10)
    # kombu's Redis transport keeps priority p > 0 in "<queue>\x06\x16<p>" (steps 0/3/6/9).
    lists = [queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))]

    def length() -> int | None:
        try:
            pipe = client.pipeline()
            for name in lists:
                pipe.llen(name)
            return sum(int(n) for n in pipe.execute())
        except redis.RedisError:
            return None

    return length


def _server_time(storage: Storage) -> float:
    """The S3 server's clock now, in whole seconds (what LastModified is compared with);
    this machine's clock when the server sends no Date header."""
    from email.utils import parsedate_to_datetime

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = storage.client.head_bucket(Bucket=storage.bucket)
        date = response["ResponseMetadata"]["HTTPHeaders"].get("date")
    except (ClientError, BotoCoreError):  # the shards will report what is wrong
        date = None
    return parsedate_to_datetime(date).timestamp() if date else float(int(time.time()))


def sender_app() -> Any:
    """A producer-only Celery app for the configured broker (JSON, kwargs, no results), so
    that the coordinator never depends on the worker app's cached configuration."""
    from celery import Celery

    from s3w_tasks.settings import get_settings

    sender = Celery("s3w-coordinator", set_as_current=False)
    sender.conf.update(
        broker_url=get_settings().broker_url,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
    )
    return sender


def _finish(sums: _Sums, run_id: str, started: float) -> DistributedSyncResult:
    t = sums.total
    # Files put by attempts that died (or failed and ran again) are in no result; the attempt
    # that finished the shard found them in the bucket, unchanged. Count them as uploaded by
    # this run, and not as objects the bucket held before it.
    extra = min(sums.earlier_uploads, t.unchanged, t.remote_objects)
    data = {name: getattr(t, name) for name in SyncResult.__dataclass_fields__}
    data.update(
        uploaded=t.uploaded + extra,
        uploaded_bytes=t.uploaded_bytes + (sums.earlier_bytes if extra else 0),
        unchanged=t.unchanged - extra,
        remote_objects=t.remote_objects - extra,
        seconds=round(time.monotonic() - started, 3),
    )
    return DistributedSyncResult(**data, run_id=run_id)


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
    sums: _Sums,
    progress: RunProgress,
    on_progress: Callable[[RunProgress], None] | None,
    rules: Waiting,
) -> None:
    """Wait until every shard of this phase has reported; sum as results arrive."""
    waiting = set(shards)
    started = time.monotonic() - progress.seconds
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
                sums.total.failures.append(Failure(f"(shard {shard})", str(record["error"])))
                progress.failures += 1
            else:
                progress.failures += sums.add(record["result"], phase=phase, shard=shard)
                sums.earlier_uploads += int(record.get("earlier_uploads") or 0)
                sums.earlier_bytes += int(record.get("earlier_bytes") or 0)
        files, size = _live(client, run_id)
        beats = runs.beats(client, run_id)
        if (files, beats) != (seen_files, seen_beats):
            seen_files, seen_beats, last_change = files, beats, time.monotonic()
        progress.files, progress.bytes = files, size
        progress.seconds = time.monotonic() - started
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

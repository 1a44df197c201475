"""A sync's result summed over folders and shards: one sum for a shard and for a whole run."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from typing import Any

from s3w_storage.sync import Failure, SyncResult

#: What a shard's sync phase reports about its plan; its delete phase plans the same folders
#: again, so only what it did (uploads, deletes, failures) is added for it.
PLAN_COUNTS = (
    "local_files",
    "remote_objects",
    "planned_uploads",
    "planned_bytes",
    "planned_deletes",
    "unchanged",
    "skipped_links",
    "skipped_special",
    "excluded",
)


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


def merge_results(a: SyncResult, b: SyncResult) -> SyncResult:
    """The sum of two results (counts added, failures joined)."""
    data: dict[str, Any] = {}
    for f in fields(SyncResult):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "failures":
            data[f.name] = [*x, *y]
        elif f.name == "delete_refused":
            data[f.name] = "; ".join(v for v in (x, y) if v) or None
        elif isinstance(x, (bool, str)):
            data[f.name] = x
        else:
            data[f.name] = x + y
    return SyncResult(**data)


def result_from_record(data: dict[str, Any]) -> SyncResult:
    """A :class:`SyncResult` back from its ``to_dict()`` (as a shard reports it)."""
    known = {f.name for f in fields(SyncResult)}
    given = {name: value for name, value in data.items() if name in known}
    given["failures"] = [Failure(f["key"], f["error"]) for f in data.get("failures") or []]
    return SyncResult(**given)


class RunSums:
    """The running sum of a distributed run (the coordinator's only per-run state besides
    shard names), built with :func:`merge_results` like a shard's own sum."""

    def __init__(self, root: str, dry_run: bool) -> None:
        self.total = SyncResult(
            root=root,
            dry_run=dry_run,
            local_files=0,
            remote_objects=0,
            planned_uploads=0,
            planned_bytes=0,
            planned_deletes=0,
        )
        self.per_shard_deletes: dict[str, int] = {}
        #: Files put by attempts that died or failed afterwards (reported by the bucket).
        self.earlier_uploads = 0
        self.earlier_bytes = 0

    def add(self, result: SyncResult, *, phase: str, shard: str | None) -> int:
        """Add one shard's result (``shard`` None: the coordinator's loose files); returns
        its failure count. A refused delete is counted as a failure of its shard."""
        part = replace(result, processes=0, seconds=0.0, failures=list(result.failures))
        if phase != "sync":
            for name in PLAN_COUNTS:
                setattr(part, name, 0)
        elif part.planned_deletes and shard is not None:
            self.per_shard_deletes[shard] = part.planned_deletes
        if part.delete_refused:
            where = shard if shard is not None else "loose files"
            part.failures.append(Failure(f"(delete {where})", part.delete_refused))
            part.delete_refused = None
        self.total = merge_results(self.total, part)
        return len(part.failures)

    def add_record(self, record: dict[str, Any], *, phase: str, shard: str) -> int:
        """Add what a shard task reported (its result, the earlier attempts' uploads)."""
        self.earlier_uploads += int(record.get("earlier_uploads") or 0)
        self.earlier_bytes += int(record.get("earlier_bytes") or 0)
        return self.add(result_from_record(record["result"]), phase=phase, shard=shard)

    def fail(self, shard: str, message: str) -> None:
        """A shard that ended with an error instead of a result."""
        self.total.failures.append(Failure(f"(shard {shard})", message))

    def finish(self, run_id: str, started: float) -> DistributedSyncResult:
        """The run's result. Files put by attempts that died (or failed and ran again) are in
        no result; the attempt that finished the shard found them in the bucket, unchanged.
        They count as uploaded by this run, not as objects the bucket held before it."""
        t = self.total
        extra = min(self.earlier_uploads, t.unchanged, t.remote_objects)
        data = {f.name: getattr(t, f.name) for f in fields(SyncResult)}
        data.update(
            uploaded=t.uploaded + extra,
            uploaded_bytes=t.uploaded_bytes + (self.earlier_bytes if extra else 0),
            unchanged=t.unchanged - extra,
            remote_objects=t.remote_objects - extra,
            seconds=round(time.monotonic() - started, 3),
        )
        return DistributedSyncResult(**data, run_id=run_id)

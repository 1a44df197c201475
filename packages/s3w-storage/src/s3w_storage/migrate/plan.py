"""The migration plan: which source objects the target lacks or holds differently, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from s3w_storage.errors import InvalidKey
from s3w_storage.keys import check_relative
from s3w_storage.migrate.archive import etags_are_md5, refuse_unprotected
from s3w_storage.migrate.compare import (
    Difference,
    judge_all,
    list_both,
    quick_verdict,
)
from s3w_storage.migrate.target import check_distinct, same_account

if TYPE_CHECKING:
    from s3w_storage.objects import Storage
    from s3w_storage.sync.listing import RemoteObject


@dataclass(frozen=True, slots=True)
class Copy:
    """One object to copy and why: new | size | checksum | unverifiable."""

    key: str
    size: int
    reason: str


@dataclass(frozen=True)
class MigrateOptions:
    """How to migrate; every field has the safe default."""

    dry_run: bool = False
    #: Concurrent copies (None: the target settings' ``max_concurrency``).
    jobs: int | None = None
    #: Server-side copy: None decides (same endpoint and credentials), False never, True always.
    server_side: bool | None = None
    #: Copy at most this many objects in this run (staged migrations; the rest on a re-run).
    limit: int | None = None


@dataclass
class MigratePlan:
    source_objects: int
    source_bytes: int
    target_objects: int
    server_side: bool
    copies: list[Copy] = field(default_factory=list)
    unchanged: int = 0
    hashed: int = 0  # source objects read to compute an MD5 the ETags could not give
    errors: list[Difference] = field(default_factory=list)

    @property
    def copy_bytes(self) -> int:
        return sum(c.size for c in self.copies)

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for copy in self.copies:
            counts[copy.reason] = counts.get(copy.reason, 0) + 1
        return counts


def build_plan(
    source: Storage,
    target: Storage,
    options: MigrateOptions | None = None,
    *,
    listings: tuple[dict[str, RemoteObject], dict[str, RemoteObject]] | None = None,
) -> MigratePlan:
    """List both sides and decide which source objects to copy: those missing on the target
    or differing in size or content. Raises a StorageError when a side cannot be listed, and
    a ConfigError when retention the source needs cannot be kept on the target."""
    options = options or MigrateOptions()
    check_distinct(source.settings, target.settings)
    jobs = options.jobs or target.settings.max_concurrency
    src_index, dst_index = listings or list_both(source, target, jobs=jobs)
    refuse_unprotected(source, target, src_index, jobs=jobs)  # before anything is copied
    server_side = (
        options.server_side
        if options.server_side is not None
        else same_account(source.settings, target.settings)
    )
    plan = MigratePlan(
        source_objects=len(src_index),
        source_bytes=sum(o.size for o in src_index.values()),
        target_objects=len(dst_index),
        server_side=server_side,
    )
    unsure: list[tuple[str, RemoteObject, RemoteObject]] = []
    for key in sorted(src_index):
        src = src_index[key]
        try:
            check_relative(key)  # every key validated, as on every other path
        except InvalidKey as exc:
            plan.errors.append(Difference(key, f"not copied: {exc}"))
            continue
        dst = dst_index.get(key)
        if dst is None:
            plan.copies.append(Copy(key, src.size, "new"))
            continue
        verdict = quick_verdict(src, dst, etags_are_md5=etags_are_md5(source, target))
        if verdict is None:
            unsure.append((key, src, dst))
        elif verdict:
            plan.unchanged += 1
        else:
            plan.copies.append(Copy(key, src.size, "size" if src.size != dst.size else "checksum"))
    for key, why, read, error in judge_all(source, target, unsure, jobs=jobs, read_target=False):
        plan.hashed += read
        if error is not None:
            plan.errors.append(Difference(key, str(error)))
        elif why is None:
            plan.unchanged += 1
        else:
            plan.copies.append(Copy(key, src_index[key].size, why))
    plan.copies.sort(key=lambda c: c.key)
    return plan

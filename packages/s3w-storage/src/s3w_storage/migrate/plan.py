"""The migration plan: which source objects the target lacks or holds differently, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from s3w_storage.errors import InvalidKey
from s3w_storage.keys import check_relative
from s3w_storage.migrate.archive import refuse_unprotected
from s3w_storage.migrate.compare import Difference, compare_all, list_both
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
    valid: dict[str, RemoteObject] = {}
    for key in sorted(src_index):
        try:
            check_relative(key)  # every key validated, as on every other path
        except InvalidKey as exc:
            plan.errors.append(Difference(key, f"not copied: {exc}"))
            continue
        valid[key] = src_index[key]
    found = compare_all(source, target, valid, dst_index, jobs=jobs, read_target=False)
    plan.unchanged, plan.hashed = found.matched, found.hashed
    plan.errors += found.errors
    plan.copies = [Copy(key, valid[key].size, "new") for key in found.missing]
    plan.copies += [Copy(d.key, valid[d.key].size, d.why) for d in found.different]
    plan.copies.sort(key=lambda c: c.key)
    return plan

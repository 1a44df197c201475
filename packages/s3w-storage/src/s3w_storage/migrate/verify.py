"""Verifying a migration: both sides compared object by object (count, size, checksum), and
optionally every key the Papermerge database says must exist."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from s3w_storage.migrate.archive import check_protection
from s3w_storage.migrate.compare import Difference, compare_all, list_both
from s3w_storage.migrate.target import check_distinct

if TYPE_CHECKING:
    from s3w_storage.objects import Storage
    from s3w_storage.sync.listing import RemoteObject


@dataclass
class ExpectedKeys:
    """What the database says must exist: ``required`` keys (document files, thumbnails of
    ready documents) and page ids whose previews must be copied wherever the source has them."""

    required: set[str] = field(default_factory=set)
    page_ids: set[str] = field(default_factory=set)


@dataclass
class VerifyReport:
    """Both sides compared object by object; ``ok`` when nothing is missing, extra or different."""

    source_objects: int
    target_objects: int
    source_bytes: int
    target_bytes: int
    matched: int = 0
    hashed: int = 0
    missing: list[str] = field(default_factory=list)  # on the source, not on the target
    extra: list[str] = field(default_factory=list)  # on the target, not on the source
    different: list[Difference] = field(default_factory=list)
    errors: list[Difference] = field(default_factory=list)
    db_checked: int = 0
    db_missing: list[str] = field(default_factory=list)  # expected, not on the target
    db_absent_everywhere: list[str] = field(default_factory=list)  # expected, on neither side
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.different or self.errors or self.db_missing)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["different"] = [{"key": d.key, "why": d.why} for d in self.different]
        data["errors"] = [{"key": d.key, "error": d.why} for d in self.errors]
        data["ok"] = self.ok
        return data


def verify(
    source: Storage,
    target: Storage,
    *,
    jobs: int | None = None,
    expected: ExpectedKeys | None = None,
    listings: tuple[dict[str, RemoteObject], dict[str, RemoteObject]] | None = None,
) -> VerifyReport:
    """Compare both sides object by object: count, size and content MD5 (ETags where they
    are MD5s, stored MD5s, else both objects read and hashed). With ``expected``, also check
    that every key the database requires is on the target. ``listings`` (from
    :func:`~s3w_storage.migrate.compare.list_both`) saves listing again what was just listed."""
    started = time.monotonic()
    check_distinct(source.settings, target.settings)
    workers = jobs or target.settings.max_concurrency
    src_index, dst_index = listings or list_both(source, target, jobs=workers)
    report = VerifyReport(
        source_objects=len(src_index),
        target_objects=len(dst_index),
        source_bytes=sum(o.size for o in src_index.values()),
        target_bytes=sum(o.size for o in dst_index.values()),
    )
    report.extra = sorted(k for k in dst_index if k not in src_index)
    found = compare_all(source, target, src_index, dst_index, jobs=workers, read_target=True)
    report.missing, report.matched, report.hashed = found.missing, found.matched, found.hashed
    report.errors = found.errors
    for d in found.different:
        src, dst = src_index[d.key], dst_index[d.key]
        why = f"size {src.size} != {dst.size}" if d.why == "size" else d.why
        report.different.append(Difference(d.key, why))
    both = (k for k in src_index if k in dst_index)  # encryption, class, retention kept?
    report.different.extend(check_protection(source, target, both, jobs=workers))
    report.different.sort(key=lambda d: d.key)
    if expected is not None:
        _check_expected(report, expected, src_index, dst_index)
    report.seconds = round(time.monotonic() - started, 3)
    return report


_PREVIEW = re.compile(r"previews/pages/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f-]{36})/[a-z]+\.jpg")


def _check_expected(
    report: VerifyReport,
    expected: ExpectedKeys,
    src_index: Mapping[str, RemoteObject],
    dst_index: Mapping[str, RemoteObject],
) -> None:
    for key in sorted(expected.required):
        report.db_checked += 1
        if key in dst_index:
            continue
        if key in src_index:
            report.db_missing.append(key)
        else:
            report.db_absent_everywhere.append(key)
    if expected.page_ids:
        for key in src_index:
            match = _PREVIEW.fullmatch(key)
            if match is None or match.group(1) not in expected.page_ids:
                continue
            report.db_checked += 1
            if key not in dst_index:
                report.db_missing.append(key)
        report.db_missing.sort()

"""What ``s3w audit`` found and did: the findings with their samples, the options, the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Examples kept per kind of finding (the counts are always complete).
SAMPLE = 1000


@dataclass
class Finding:
    """One kind of defect: how many, and the first :data:`SAMPLE` of them."""

    count: int = 0
    bytes: int = 0
    items: list[str] = field(default_factory=list)
    limit: int = field(default=SAMPLE, repr=False)

    def add(self, item: str, size: int = 0) -> None:
        self.count += 1
        self.bytes += size
        if len(self.items) < self.limit:
            self.items.append(item)


@dataclass(frozen=True)
class AuditOptions:
    checksum: bool = False
    repair: bool = False
    delete_orphans: bool = False
    max_delete: int = 0


@dataclass
class AuditResult:
    """What the audit found (and, with repair, did). ``ok``: nothing found or all repaired."""

    root: str
    versions: int = 0
    documents_ready: int = 0
    pages_checked: int = 0
    objects: int = 0
    local_files: int = 0
    missing_in_bucket: Finding = field(default_factory=Finding)
    missing_on_disk: Finding = field(default_factory=Finding)
    different: Finding = field(default_factory=Finding)
    missing_thumbnails: Finding = field(default_factory=Finding)
    missing_previews: Finding = field(default_factory=Finding)
    orphans: Finding = field(default_factory=Finding)
    retained: Finding = field(default_factory=Finding)  # orphans an object lock keeps
    uploaded: int = 0
    restored: int = 0
    thumbnails_requested: int = 0
    previews_requested: int = 0
    deleted: int = 0
    repair_failures: list[str] = field(default_factory=list)
    delete_refused: str | None = None
    seconds: float = 0.0

    @property
    def defects(self) -> int:
        return (
            self.missing_in_bucket.count
            + self.missing_on_disk.count
            + self.different.count
            + self.missing_thumbnails.count
            + self.missing_previews.count
        )

    @property
    def ok(self) -> bool:
        return not self.defects and not self.orphans.count

    def to_dict(self) -> dict[str, Any]:

        data = asdict(self)
        for finding in data.values():
            if isinstance(finding, dict):
                finding.pop("limit", None)
        data["defects"] = self.defects
        data["ok"] = self.ok
        return data

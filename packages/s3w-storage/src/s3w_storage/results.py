"""What a bulk run (sync, restore, migrate) reports: whether it is ok, its JSON form, and
the counts it publishes for ``s3w status`` and the Pushgateway."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: ``progress(items, bytes)``: called as a run moves items, with increments.
Progress = Callable[[int, int], None]


@dataclass
class Tally:
    """How many items, and their bytes."""

    count: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.bytes += size


@dataclass(kw_only=True)
class RunResult:
    """What every bulk run reports, shared by the results of sync, restore and migrate; each
    adds its own counts. ``failures`` holds items with ``key`` and ``message``; a
    :class:`Tally` ``x`` is written as ``x`` (its count) and ``x_bytes``."""

    #: The counts a run publishes, by their names in the summary: ``name`` (the attribute of
    #: that name) or ``name=attribute``, space-separated; a list counts its items.
    PUBLISHED: ClassVar[str] = ""
    #: The byte counts a run publishes, written the same way (a :class:`Tally` its bytes).
    PUBLISHED_BYTES: ClassVar[str] = ""

    dry_run: bool = False
    #: Items already the same on both sides.
    unchanged: int = 0
    failures: list[Any] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, value in dataclasses.asdict(self).items():
            tally = getattr(self, name)
            if isinstance(tally, Tally):
                data[name], data[f"{name}_bytes"] = tally.count, tally.bytes
            else:
                data[name] = value
        data["failures"] = [{"key": f.key, "error": f.message} for f in self.failures]
        data["ok"] = self.ok
        return data

    def counts(self) -> dict[str, int]:
        """The published counts, by their names in the summary."""
        return self._published(self.PUBLISHED, lambda tally: tally.count)

    def byte_counts(self) -> dict[str, int]:
        """The published byte counts, by their names in the summary."""
        return self._published(self.PUBLISHED_BYTES, lambda tally: tally.bytes)

    def _published(self, spec: str, of_tally: Callable[[Tally], int]) -> dict[str, int]:
        counts = {}
        for word in spec.split():
            name, _, attribute = word.partition("=")
            value = getattr(self, attribute or name)
            if isinstance(value, Tally):
                value = of_tally(value)
            counts[name] = len(value) if isinstance(value, list) else int(value)
        return counts

"""What a bulk run (sync, restore, migrate) reports: whether it is ok, its JSON form, and
the counts it publishes for ``s3w status`` and the Pushgateway."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar


class RunResult:
    """Shared by the result dataclasses of sync, restore and migrate. Each declares
    ``dry_run``, ``failures`` (items with ``key`` and ``message``) and ``seconds`` among its
    own fields, in the order its JSON form keeps."""

    #: The counts a run publishes, by their names in the summary: ``name`` (the attribute of
    #: that name) or ``name=attribute``, space-separated; a list counts its items.
    PUBLISHED: ClassVar[str] = ""
    #: The byte counts a run publishes, written the same way.
    PUBLISHED_BYTES: ClassVar[str] = ""

    dry_run: bool
    failures: list[Any]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dataclasses.asdict(self)  # type: ignore[call-overload]
        data["failures"] = [{"key": f.key, "error": f.message} for f in self.failures]
        data["ok"] = self.ok
        return data

    def counts(self) -> dict[str, int]:
        """The published counts, by their names in the summary."""
        return self._published(self.PUBLISHED)

    def byte_counts(self) -> dict[str, int]:
        """The published byte counts, by their names in the summary."""
        return self._published(self.PUBLISHED_BYTES)

    def _published(self, spec: str) -> dict[str, int]:
        counts = {}
        for word in spec.split():
            name, _, attribute = word.partition("=")
            value = getattr(self, attribute or name)
            counts[name] = len(value) if isinstance(value, list) else int(value)
        return counts

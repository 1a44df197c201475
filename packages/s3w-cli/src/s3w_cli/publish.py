"""The end of a one-off command (sync, migrate, and any later one of the kind): its summary
recorded for ``s3w status`` and pushed to ``S3W_PUSHGATEWAY_URL`` (s3w_tasks.summary)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from s3w_storage.results import RunResult


def publish(
    command: str,
    *,
    ok: bool,
    seconds: float,
    items: dict[str, int],
    sizes: dict[str, int],
    dry_run: bool = False,
) -> None:
    """Publish a run's summary; a problem doing so is one warning line, never a failure of
    the run itself. A dry run publishes nothing."""
    if dry_run:
        return
    from s3w_tasks.summary import RunSummary
    from s3w_tasks.summary import publish as send

    summary = RunSummary(command=command, ok=ok, seconds=seconds, items=items, bytes=sizes)
    for problem in send(summary):
        typer.echo(f"warning: {problem}", err=True)


def publish_result(
    command: str,
    result: RunResult,
    *,
    ok: bool | None = None,
    more: Mapping[str, int] | None = None,
) -> None:
    """:func:`publish` for a sync, restore or migrate result: its own counts (and ``more``),
    its ``ok`` unless ``ok`` is given."""
    publish(
        command,
        ok=result.ok if ok is None else ok,
        seconds=result.seconds,
        items={**result.counts(), **(more or {})},
        sizes=result.byte_counts(),
        dry_run=result.dry_run,
    )

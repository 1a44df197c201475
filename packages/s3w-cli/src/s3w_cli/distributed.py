"""``--distributed``: run ``s3w sync`` and the preview backfills through the Celery workers.

The commands stay in their modules (``sync``, ``documents``); this module holds what the
distributed variants add: the live progress line and the coordinator calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from s3w_cli.options import JSON_SUMMARY
from s3w_cli.output import human_size

if TYPE_CHECKING:
    from s3w_storage.sync import SyncOptions
    from s3w_tasks.fleet.distributed import RunProgress
    from s3w_tasks.fleet.sync_sums import DistributedSyncResult


def progress_line(p: RunProgress) -> str:
    """``sync: 12/40 shards, 3,201 files, 12.5 MB, 640 files/s, 0 failures``"""
    return (
        f"{p.phase}: {p.shards_done}/{p.shards} shards, {p.done.count:,} files, "
        f"{human_size(p.done.bytes)}, {p.files_per_second:,.0f} files/s "
        f"({human_size(p.bytes_per_second)}/s), {p.failures} failures"
        + (f", {p.resent} sent again" if p.resent else "")
        + ("" if p.shards_done or p.done.count else f" (waiting for workers on {p.queue!r})")
    )


def sync_distributed(
    root: Path, options: SyncOptions, *, show: bool, stall_timeout: float | None
) -> DistributedSyncResult:
    """The coordinator with a live status line on stderr (when ``show``)."""
    from s3w_tasks.fleet.distributed import distributed_sync

    if not show:
        return distributed_sync(root, options, stall_timeout=stall_timeout)
    from rich.console import Console
    from rich.status import Status

    status = Status("planning shards", console=Console(stderr=True))

    def shown(progress: RunProgress) -> None:
        status.update(progress_line(progress))

    with status:
        return distributed_sync(root, options, on_progress=shown, stall_timeout=stall_timeout)


def print_spread(result: Any) -> None:
    """One line under the summary table: how the run was spread over the workers."""
    typer.echo(
        f"shards: {result.shards} ({result.folders} folders), "
        f"{result.shards_retried} run more than once"
        + (
            f", {result.shards_resent} sent again (lost or held by a dead worker)"
            if result.shards_resent
            else ""
        ),
        err=True,
    )


def backfill(kind: str, *, limit_batch: int, max_queued: int, per_task: int, as_json: bool) -> None:
    """Enqueue thumbnail or page-image tasks for everything that needs one, with progress."""
    from s3w_cli.output import expected_errors, print_json

    with expected_errors():
        from s3w_tasks.fleet import backfill as bf

        if kind == "thumbnails":
            batches = bf.thumbnail_batches(limit_batch)
        else:
            from s3w_storage.objects import get_storage

            batches = bf.pages_needing_previews(get_storage(), limit_batch)
        show = not as_json
        status: Any = None
        if show:
            from rich.console import Console
            from rich.status import Status

            status = Status(f"looking for {kind} to make", console=Console(stderr=True))
            status.start()

        def shown(p: bf.BackfillProgress) -> None:
            if status is not None:
                status.update(
                    f"{p.kind}: {p.enqueued:,} enqueued in {p.tasks:,} tasks, "
                    f"{p.queued:,} waiting in {p.queue!r}"
                )

        try:
            done = bf.enqueue(
                kind, batches, per_task=per_task, max_queued=max_queued, on_progress=shown
            )
        finally:
            if status is not None:
                status.stop()
    summary = {"kind": kind, "queue": done.queue, "enqueued": done.enqueued, "tasks": done.tasks}
    if as_json:
        print_json(summary)
    else:
        typer.echo(f"{done.enqueued} {kind} enqueued in {done.tasks} task(s) on {done.queue!r}")


def generate_page_previews(
    distributed: bool = typer.Option(
        True, "--distributed/--local", help="Enqueue for the workers (the only mode so far)."
    ),
    batch: int = typer.Option(500, "--batch", min=1, max=10_000, help="Pages per round."),
    max_queued: int = typer.Option(
        2000, "--max-queued", min=1, help="Wait while the preview queue holds this many."
    ),
    per_task: int = typer.Option(4, "--pages-per-task", min=1, max=100),
    as_json: bool = JSON_SUMMARY,
) -> None:
    """Enqueue page-image tasks for every last-version page missing a preview size."""
    if not distributed:
        from s3w_cli.output import fail

        fail("page previews are rendered by the workers: use --distributed")
    backfill(
        "page previews",
        limit_batch=batch,
        max_queued=max_queued,
        per_task=per_task,
        as_json=as_json,
    )

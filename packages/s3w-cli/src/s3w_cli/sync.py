"""``s3w sync``: mirror the media root into the bucket (the engine is s3w_storage.sync)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from s3w_cli.options import (
    EXCLUDE,
    INCLUDE,
    JSON_SUMMARY,
    PROGRESS_BAR,
    dry_run_option,
    jobs_option,
)
from s3w_cli.output import expected_errors, print_json
from s3w_cli.publish import publish_result

if TYPE_CHECKING:
    from s3w_storage.sync import SyncPlan, SyncResult


def sync(
    media_root: Path | None = typer.Argument(
        None, help="Local media folder (default: PM_MEDIA_ROOT)."
    ),
    dry_run: bool = dry_run_option("Print the plan; change nothing."),
    delete: bool = typer.Option(
        False, "--delete", help="Delete objects that have no local file (never local files)."
    ),
    max_delete: int = typer.Option(
        1000, "--max-delete", min=0, help="Refuse --delete when more objects would go."
    ),
    checksum: bool = typer.Option(
        False, "--checksum", help="Compare content by MD5 instead of size and mtime."
    ),
    include: list[str] = INCLUDE,
    exclude: list[str] = EXCLUDE,
    jobs: int | None = jobs_option("requests per process"),
    processes: int | None = typer.Option(
        None,
        "--processes",
        min=0,
        max=64,
        help="Upload worker processes (default: none, threads only).",
    ),
    as_json: bool = JSON_SUMMARY,
    progress: bool | None = PROGRESS_BAR,
    distributed: bool = typer.Option(
        False,
        "--distributed",
        help="Spread the sync over the Celery workers of the s3 queue (see docs/scaling.md).",
    ),
    stall_timeout: float | None = typer.Option(
        None,
        "--stall-timeout",
        min=1,
        help="With --distributed: give up after this many "
        "seconds without progress (default: wait).",
    ),
) -> None:
    """Upload new and changed files from the media root; exit 1 if anything failed."""
    with expected_errors():
        from s3w_storage.objects import get_storage
        from s3w_storage.settings import get_settings
        from s3w_storage.sync import SyncOptions, check_media_root
        from s3w_storage.sync import sync as run_sync

        root = media_root if media_root is not None else Path(get_settings().media_root)
        check_media_root(root)  # a clear error before any network call
        options = SyncOptions(
            delete=delete,
            max_delete=max_delete,
            dry_run=dry_run,
            checksum=checksum,
            include=tuple(include),
            exclude=tuple(exclude),
            jobs=jobs,
            processes=processes,
        )
        storage = get_storage()
        plans: list[SyncPlan] = []
        show = sys.stderr.isatty() and not as_json if progress is None else progress
        result: SyncResult
        if distributed:
            from s3w_cli.distributed import sync_distributed

            result = sync_distributed(root, options, show=show, stall_timeout=stall_timeout)
        elif show:
            result = _with_progress(storage, root, options, plans.append)
        else:
            result = run_sync(storage, root, options, on_plan=plans.append)
    publish_result("sync", result)
    if as_json:
        data = result.to_dict()
        if dry_run and plans:
            data["plan"] = {
                "uploads": [{"key": u.file.key, "reason": u.reason} for u in plans[0].uploads],
                "deletes": plans[0].deletes,
            }
        print_json(data)
    else:
        if dry_run and plans:
            for upload in plans[0].uploads:
                typer.echo(f"upload {upload.file.key} ({upload.reason})")
            for key in plans[0].deletes:
                typer.echo(f"delete {key}")
        _summary(result, storage.bucket, storage.prefix)
        if distributed:
            from s3w_cli.distributed import print_spread

            print_spread(result)
    if not result.ok:
        raise typer.Exit(1)


def _with_progress(
    storage: Any, root: Path, options: Any, on_plan: Callable[[SyncPlan], None]
) -> SyncResult:
    """The sync with a rich progress bar on stderr: phase, files done, bytes, rate, ETA."""
    from s3w_cli.output import TransferBar
    from s3w_storage.sync import sync as run_sync

    bar = TransferBar("files", "scanning")

    def planned(plan: SyncPlan) -> None:
        bar.plan(len(plan.uploads), plan.upload_bytes)
        on_plan(plan)

    with bar:
        return run_sync(
            storage,
            root,
            options,
            progress=bar.advance,
            on_plan=planned,
            on_phase=bar.phase,
        )


def _summary(result: SyncResult, bucket: str, prefix: str) -> None:
    from s3w_cli.output import human_size, print_summary

    target = f"s3://{bucket}/{prefix + '/' if prefix else ''}"
    title = f"{'plan' if result.dry_run else 'sync'}: {result.root} -> {target}"
    rows: list[tuple[str, str]] = [
        ("local files", f"{result.local_files}"),
        ("remote objects", f"{result.remote_objects}"),
        ("unchanged", f"{result.unchanged}"),
    ]
    if result.dry_run:
        rows += [
            ("would upload", f"{result.planned_uploads} ({human_size(result.planned_bytes)})"),
            ("would delete", f"{result.planned_deletes}"),
        ]
    else:
        rows += [
            ("uploaded", f"{result.uploaded} ({human_size(result.uploaded_bytes)})"),
            ("deleted", f"{result.deleted}"),
            ("failed", f"{len(result.failures)}"),
            ("seconds", f"{result.seconds:.1f}"),
        ]
    skipped = result.skipped_links + result.skipped_special
    if skipped or result.excluded:
        rows.append(("skipped (links, special, excluded)", f"{skipped + result.excluded}"))
    print_summary(title, rows, [(f.key, f.message) for f in result.failures])
    if result.delete_refused:
        typer.echo(f"not deleted: {result.delete_refused}", err=True)

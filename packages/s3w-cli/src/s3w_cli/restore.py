"""``s3w restore``: bring the archive back from the bucket (the engine is s3w_storage.restore)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
    from s3w_storage.restore import RestoreResult


def restore(
    dest: Path | None = typer.Argument(
        None, help="Folder to restore into (default: PM_MEDIA_ROOT); created when missing."
    ),
    dry_run: bool = dry_run_option("Print what would be fetched."),
    checksum: bool = typer.Option(
        False, "--checksum", help="Compare files of the same size by MD5 as well."
    ),
    force: bool = typer.Option(
        False, "--force", help="Overwrite newer or same-size different local files too."
    ),
    include: list[str] = INCLUDE,
    exclude: list[str] = EXCLUDE,
    jobs: int | None = jobs_option("downloads"),
    as_json: bool = JSON_SUMMARY,
    progress: bool | None = PROGRESS_BAR,
) -> None:
    """Download what is missing or different from the bucket; exit 1 if anything failed."""
    with expected_errors():
        from s3w_storage.objects import get_storage
        from s3w_storage.restore import RestoreOptions, check_destination
        from s3w_storage.restore import restore as run_restore
        from s3w_storage.settings import get_settings

        root = dest if dest is not None else Path(get_settings().media_root)
        check_destination(root, create=not dry_run)  # a clear error before any network call
        options = RestoreOptions(
            dry_run=dry_run,
            checksum=checksum,
            force=force,
            include=tuple(include),
            exclude=tuple(exclude),
            jobs=jobs,
        )
        storage = get_storage()

        def action(key: str, reason: str) -> None:
            if dry_run and not as_json:
                typer.echo(f"restore {key} ({reason})")

        show = sys.stderr.isatty() and not as_json if progress is None else progress
        if show:
            from s3w_cli.output import TransferBar

            with TransferBar("objects", "restoring") as bar:
                result = run_restore(storage, root, options, progress=bar.advance, on_action=action)
        else:
            result = run_restore(storage, root, options, on_action=action)
    publish_result("restore", result)
    if as_json:
        print_json(result.to_dict())
    else:
        _summary(result, storage.bucket, storage.prefix)
    if not result.ok:
        raise typer.Exit(1)


def _summary(result: RestoreResult, bucket: str, prefix: str) -> None:
    from s3w_cli.output import human_size, print_summary

    source = f"s3://{bucket}/{prefix + '/' if prefix else ''}"
    title = f"{'plan' if result.dry_run else 'restore'}: {source} -> {result.root}"
    rows = [
        ("objects", f"{result.objects}"),
        ("unchanged", f"{result.unchanged}"),
        ("kept (local file newer)", f"{result.kept_newer}"),
    ]
    if result.dry_run:
        rows.append(
            ("would restore", f"{result.planned.count} ({human_size(result.planned.bytes)})")
        )
    else:
        rows += [
            ("restored", f"{result.restored.count} ({human_size(result.restored.bytes)})"),
            ("failed", f"{len(result.failures)}"),
            ("seconds", f"{result.seconds:.1f}"),
        ]
    if result.excluded:
        rows.append(("excluded", f"{result.excluded}"))
    print_summary(title, rows, [(f.key, f.message) for f in result.failures], shown=None)

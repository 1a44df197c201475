"""``s3w audit``: prove that database, bucket and media root agree (the engine is
s3w_tasks.audit)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from s3w_cli.output import SHOWN, expected_errors, human_size, print_json
from s3w_cli.publish import publish

if TYPE_CHECKING:
    from s3w_tasks.audit_result import AuditResult


def audit(
    media_root: Path | None = typer.Argument(
        None, help="Local media folder (default: PM_MEDIA_ROOT)."
    ),
    checksum: bool = typer.Option(
        False, "--checksum", help="Compare version files on disk and in the bucket by MD5."
    ),
    repair: bool = typer.Option(
        False,
        "--repair",
        help="Upload what the bucket lacks, restore what the disk lacks, "
        "re-request missing thumbnails and previews.",
    ),
    delete_orphans: bool = typer.Option(
        False, "--delete-orphans", help="Delete orphan objects (at most --max-delete)."
    ),
    max_delete: int = typer.Option(
        0, "--max-delete", min=0, help="Refuse --delete-orphans when more would go."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Show the phase on stderr (default: on a terminal)."
    ),
) -> None:
    """Report versions, thumbnails and previews missing or different in the bucket or on
    disk, and orphan objects; exit 1 when anything is wrong."""
    with expected_errors():
        import s3w_tasks.errors  # noqa: F401 - its errors are expected ones
        from s3w_storage.objects import get_storage
        from s3w_storage.settings import get_settings
        from s3w_storage.sync import check_media_root
        from s3w_tasks.audit import audit as run_audit
        from s3w_tasks.audit_result import AuditOptions

        root = media_root if media_root is not None else Path(get_settings().media_root)
        check_media_root(root)
        options = AuditOptions(
            checksum=checksum,
            repair=repair,
            delete_orphans=delete_orphans,
            max_delete=max_delete,
        )
        show = sys.stderr.isatty() and not as_json if progress is None else progress

        def phase(name: str) -> None:
            if show:
                typer.echo(f"checking {name} ...", err=True)

        result = run_audit(get_storage(), str(root), options, on_phase=phase)
    publish(
        "audit",
        ok=result.ok and not result.repair_failures and result.delete_refused is None,
        seconds=result.seconds,
        items={
            "versions": result.versions,
            "objects": result.objects,
            "defects": result.defects,
            "orphans": result.orphans.count,
            "uploaded": result.uploaded,
            "restored": result.restored,
            "deleted": result.deleted,
        },
        sizes={"orphans": result.orphans.bytes},
    )
    if as_json:
        print_json(result.to_dict())
    else:
        _report(result)
    if not result.ok or result.repair_failures or result.delete_refused:
        raise typer.Exit(1)


def _report(result: AuditResult) -> None:
    typer.echo(
        f"audit of {result.root}: {result.versions} versions, {result.documents_ready} ready "
        f"documents, {result.pages_checked} pages with previews, {result.objects} objects, "
        f"{result.local_files} local version files ({result.seconds:.1f} s)"
    )
    kinds = [
        ("version missing in the bucket", result.missing_in_bucket),
        ("version missing on disk", result.missing_on_disk),
        ("version different", result.different),
        ("thumbnail missing (document ready)", result.missing_thumbnails),
        ("page previews missing", result.missing_previews),
        ("orphan", result.orphans),
        ("retained (object lock)", result.retained),
    ]
    for label, finding in kinds:
        for item in finding.items[:SHOWN]:
            typer.echo(f"{label}: {item}")
        if finding.count > SHOWN:
            typer.echo(f"{label}: ... and {finding.count - SHOWN} more (see --json)")
    if result.orphans.count:
        typer.echo(f"orphans: {result.orphans.count} objects, {human_size(result.orphans.bytes)}")
    done = [
        ("uploaded", result.uploaded),
        ("restored", result.restored),
        ("thumbnails requested", result.thumbnails_requested),
        ("pages requested", result.previews_requested),
        ("orphans deleted", result.deleted),
    ]
    if any(count for _label, count in done):
        typer.echo("repaired: " + ", ".join(f"{label} {count}" for label, count in done))
    for failure in result.repair_failures:
        typer.echo(f"failed: {failure}", err=True)
    if result.delete_refused:
        typer.echo(f"not deleted: {result.delete_refused}", err=True)
    if result.ok:
        typer.echo("database, bucket and disk agree")

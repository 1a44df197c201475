"""Database-backed commands: document versions and thumbnails (s3w_tasks.worker)."""

from __future__ import annotations

import typer

from s3w_cli.options import JSON_SUMMARY
from s3w_cli.output import expected_errors, print_json


def add_doc_vers(
    ids: list[str] = typer.Argument(..., help="Document version ids."),
    as_json: bool = JSON_SUMMARY,
) -> None:
    """Upload document versions' files from the media root to their docver keys."""
    with expected_errors():
        from s3w_tasks.worker.versions import add_doc_vers as run

        summary = run(ids)
    _report(summary, as_json, "uploaded {uploaded}, already present {already_present}")


def remove_doc_vers(
    ids: list[str] = typer.Argument(..., help="Document version ids."),
    as_json: bool = JSON_SUMMARY,
) -> None:
    """Delete every object under each version's docver prefix."""
    with expected_errors():
        from s3w_tasks.worker.versions import remove_doc_vers as run

        summary = run(ids)
    _report(summary, as_json, None)


def doc_thumbnail(
    doc_id: str = typer.Argument(..., help="Document id."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Render and upload one document's thumbnail; prints the preview status."""
    with expected_errors():
        from s3w_tasks.worker.thumbnails import generate_doc_thumbnail

        status = generate_doc_thumbnail(doc_id)
    if as_json:
        print_json({"doc_id": doc_id, "preview_status": status})
    else:
        typer.echo(f"{doc_id}: {status}")
    if status == "failed":
        raise typer.Exit(1)


def generate_doc_thumbnails(
    progress: bool = typer.Option(False, "--progress", help="Show a progress bar."),
    jobs: int = typer.Option(
        4,
        "--jobs",
        "-j",
        min=1,
        max=64,
        help="Documents at once (database and uploads overlap; PDFium renders one page at a time).",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many."),
    as_json: bool = JSON_SUMMARY,
    distributed: bool = typer.Option(
        False, "--distributed", help="Enqueue the thumbnail tasks for the workers instead."
    ),
) -> None:
    """Render thumbnails for every ready document whose thumbnail is missing or failed."""
    if distributed:
        from s3w_cli.distributed import backfill

        backfill("thumbnails", limit_batch=500, max_queued=2000, per_task=1, as_json=as_json)
        return
    from concurrent.futures import ThreadPoolExecutor

    with expected_errors():
        from s3w_tasks.errors import TaskError
        from s3w_tasks.worker.thumbnails import documents_to_thumbnail, generate_doc_thumbnail

        todo = [str(i) for i in documents_to_thumbnail(limit)]
        counts: dict[str, int] = {}
        failures: list[dict[str, str]] = []

        def one(doc_id: str) -> str:
            from s3w_cli.output import expected_types, one_line

            try:
                return generate_doc_thumbnail(doc_id)
            except BaseException as exc:
                if not isinstance(exc, (TaskError, *expected_types())):
                    raise
                failures.append({"doc_id": doc_id, "error": one_line(exc)})
                return "failed"

        bar = None
        if progress:
            from rich.console import Console
            from rich.progress import Progress

            bar = Progress(console=Console(stderr=True), transient=not as_json)
        task = bar.add_task("thumbnails", total=len(todo)) if bar else None
        if bar:
            bar.start()
        try:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for status in pool.map(one, todo):
                    counts[status] = counts.get(status, 0) + 1
                    if bar is not None and task is not None:
                        bar.advance(task)
        finally:
            if bar:
                bar.stop()
    summary = {"documents": len(todo), "statuses": counts, "failures": failures}
    if as_json:
        print_json(summary)
    else:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"
        typer.echo(f"{len(todo)} document(s): {shown}")
        for failure in failures:
            typer.echo(f"failed: {failure['doc_id']}: {failure['error']}", err=True)
    if failures:
        raise typer.Exit(1)


def _report(summary: dict[str, object], as_json: bool, template: str | None) -> None:
    if as_json:
        print_json(summary)
    elif template is not None:
        typer.echo(template.format(**summary))
    else:
        typer.echo(", ".join(f"{k} {v}" for k, v in summary.items()))


UNFINISHED_STATES = ("uploaded", "converting", "processing_pages")


def reprocess_uploads(
    older_than: float = typer.Option(
        60,
        "--older-than",
        min=1,
        help="Minutes since the upload (default 60, well past a task's time limit).",
    ),
    status: list[str] = typer.Option(
        [],
        "--status",
        help="Only documents in this processing status (uploaded, converting, "
        "processing_pages); repeat for more. Default: all three.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the documents; send nothing."),
    as_json: bool = JSON_SUMMARY,
) -> None:
    """Send process_upload again for documents whose processing never finished (a message
    lost by the broker, a worker gone for good); the worker finishes each exactly once."""
    from s3w_cli.output import fail

    unknown = sorted(set(status) - set(UNFINISHED_STATES))
    if unknown:
        fail(
            f"--status {unknown[0]!r} is not a state processing can be left in; "
            f"use one of {', '.join(UNFINISHED_STATES)}"
        )
    with expected_errors():
        from s3w_tasks.fleet.backfill import reprocess_uploads as run
        from s3w_tasks.models import ProcessingStatus

        chosen = tuple(ProcessingStatus(s) for s in (status or UNFINISHED_STATES))
        result = run(older_than * 60, statuses=chosen, dry_run=dry_run)
    if as_json:
        print_json(
            {
                "found": result.found,
                "sent": result.sent,
                "dry_run": dry_run,
                "statuses": result.statuses,
                "documents": result.documents,
            }
        )
        return
    if not result.found:
        typer.echo(f"no document left unprocessed for over {older_than:g} min")
        return
    states = ", ".join(f"{k} {v}" for k, v in sorted(result.statuses.items()))
    verb = "would send" if dry_run else "sent"
    typer.echo(
        f"{result.found} document(s) unprocessed for over {older_than:g} min ({states}): "
        f"{verb} process_upload for each"
    )
    if dry_run:
        for doc_id in result.documents:
            typer.echo(f"  {doc_id}")

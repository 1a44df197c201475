"""Options several commands share, declared once so that their flags and help read the same."""

from __future__ import annotations

from typing import Any

import typer

JSON_SUMMARY = typer.Option(False, "--json", help="Print the summary as JSON.")
PROGRESS_BAR = typer.Option(
    None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."
)
INCLUDE = typer.Option([], "--include", help="Only keys matching this glob (repeatable).")
EXCLUDE = typer.Option([], "--exclude", help="Skip keys matching this glob.")


def dry_run_option(what: str) -> Any:
    """``--dry-run``: ``what`` says what the command prints instead of acting."""
    return typer.Option(False, "--dry-run", help=what)


def jobs_option(what: str) -> Any:
    """``--jobs/-j``: how many ``what`` run at once (1-256, default ``PM_S3_MAX_CONCURRENCY``)."""
    return typer.Option(None, "--jobs", "-j", min=1, max=256, help=f"Concurrent {what}.")

"""Options several commands share, declared once so that their flags and help read the same."""

from __future__ import annotations

import typer

JSON_SUMMARY = typer.Option(False, "--json", help="Print the summary as JSON.")
PROGRESS_BAR = typer.Option(
    None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."
)
INCLUDE = typer.Option([], "--include", help="Only keys matching this glob (repeatable).")
EXCLUDE = typer.Option([], "--exclude", help="Skip keys matching this glob.")

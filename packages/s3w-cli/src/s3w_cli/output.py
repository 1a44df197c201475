"""How the CLI speaks: one-line errors (tracebacks with --verbose), JSON, masking of secrets."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn

import typer

MASK = "********"
#: Failures (and keys) listed after a summary; the rest are counted (all are in --json).
SHOWN = 20


class State:
    """Options of the root callback that every command sees."""

    verbose: bool = False


state = State()


def fail(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr and exit 1 (configured passwords scrubbed)."""
    from s3w_cli.masking import scrub

    typer.echo(f"error: {scrub(message)}", err=True)
    raise typer.Exit(1)


def expected_types() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input, configuration or service state: no traceback for these."""
    kinds: list[type[BaseException]] = [OSError, ValueError]
    from s3w_storage.errors import StorageError

    kinds.append(StorageError)
    if "s3w_thumbs" in sys.modules:
        from s3w_thumbs import ThumbnailError

        kinds.append(ThumbnailError)
    if "s3w_tasks.errors" in sys.modules:  # imported by the command that can raise them
        from s3w_tasks.errors import TaskError

        kinds.append(TaskError)
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import SQLAlchemyError

        kinds.append(SQLAlchemyError)
    return tuple(kinds)


@contextlib.contextmanager
def expected_errors() -> Iterator[None]:
    """Turn domain errors into one line on stderr and exit code 1; ``--verbose`` re-raises
    them so the traceback shows."""
    try:
        yield
    except typer.Exit:
        raise
    except expected_types() as exc:
        if state.verbose:
            raise
        fail(one_line(exc))


def one_line(exc: BaseException) -> str:
    """The error as one line, with every configured URL password scrubbed from it."""
    from s3w_cli.masking import scrub

    return scrub(_one_line(exc))


def _one_line(exc: BaseException) -> str:
    if "sqlalchemy" in sys.modules and "s3w_tasks.errors" in sys.modules:
        from s3w_tasks.errors import describe

        return describe(exc)
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def mask_url(url: str | None) -> str | None:
    """``scheme://user:********@host/path``: the password hidden under every parser's reading
    (see :mod:`s3w_cli.masking`)."""
    from s3w_cli.masking import mask_url as masked

    return masked(url)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def human_size(n: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 KB``, ... ``2.0 TB`` (powers of 1024)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def print_summary(
    title: str,
    rows: Iterable[tuple[str, str]],
    failures: Sequence[tuple[str, str]] = (),
    *,
    shown: int | None = SHOWN,
) -> None:
    """The end-of-run table (``what | count``) on stdout, then each failure as one line on
    stderr, never wrapped (keys are for copying): at most ``shown``, the rest counted."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for row in rows:
        table.add_row(*row)
    Console(highlight=False).print(table)
    listed = failures if shown is None else failures[:shown]
    for key, why in listed:
        typer.echo(f"failed: {key}: {why}", err=True)
    if shown is not None and len(failures) > shown:
        typer.echo(f"... and {len(failures) - shown} more failures (see --json)", err=True)


class TransferBar:
    """A transient progress bar on stderr for a transfer: phase, items done of planned,
    bytes, rate and time left (``s3w sync``, ``s3w migrate``).

        bar = TransferBar("files", "scanning")
        with bar:
            run(progress=bar.advance, on_plan=lambda p: bar.plan(len(p.uploads), p.bytes))
    """

    def __init__(self, noun: str, phase: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[items]} " + noun),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.bar.add_task(phase, total=None, items="0/?")
        self.done = 0
        self.total = 0

    def plan(self, count: int, size: int, *, phase: str | None = None) -> None:
        """The work is known: ``count`` items of ``size`` bytes in all."""
        self.total = count
        self.bar.update(self.task, total=size or None, items=f"0/{count}")
        if phase is not None:
            self.phase(phase)

    def phase(self, name: str) -> None:
        self.bar.update(self.task, description=name)

    def advance(self, count: int, size: int) -> None:
        self.done += count
        self.bar.update(self.task, advance=size, items=f"{self.done}/{self.total}")

    def __enter__(self) -> TransferBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

"""``s3w worker``: exec the Celery worker on the Papermerge queues (``--fleet``: and the
fleet queue of signed distributed-sync shards)."""

from __future__ import annotations

import os
import shutil
import sys

import typer

from s3w_cli.output import expected_errors, fail


def worker(
    ctx: typer.Context,
    queues: str | None = typer.Option(
        None, "--queues", "-Q", help="Comma-separated queues (default: the s3 and preview queues)."
    ),
    fleet: bool = typer.Option(
        False,
        "--fleet",
        help="Also consume the fleet queue (signed distributed-sync shards; needs S3W_FLEET_KEY).",
    ),
    print_command: bool = typer.Option(
        False, "--print-command", help="Print the celery command line instead of running it."
    ),
) -> None:
    """Start ``celery -A s3w_tasks.celery_app worker -Q <queues>``; extra options go to Celery."""
    with expected_errors():
        from s3w_tasks.contract import default_queues
        from s3w_tasks.settings import get_settings

        chosen = queues or ",".join(default_queues())
        # JSON log lines: no banner on stdout, so every line printed is a log record.
        quiet = ["--quiet"] if get_settings().log_format == "json" else []
        if fleet:
            from s3w_tasks.fleet.authority import fleet_queue, require_key

            require_key()
            chosen = ",".join(dict.fromkeys([*chosen.split(","), fleet_queue()]))
    celery = shutil.which("celery", path=os.path.dirname(sys.executable)) or shutil.which("celery")
    if celery is None:
        fail("the celery command is not installed (pip install s3w-tasks)")
    argv = [celery, *quiet, "-A", "s3w_tasks.celery_app", "worker", "-Q", chosen, *ctx.args]
    if print_command:
        typer.echo(" ".join(argv))
        return
    sys.stdout.flush()
    os.execv(celery, argv)  # noqa: S606 - a fixed program and argument list, no shell

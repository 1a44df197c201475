"""``s3w status``: the deployment on one screen (workers, queues, tasks, documents, last runs)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

import typer

from s3w_cli.output import expected_errors, print_json


def status(
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    watch: bool = typer.Option(False, "--watch", help="Redraw every --interval seconds."),
    interval: float = typer.Option(
        2.0, "--interval", min=0.5, max=3600, help="Seconds between redraws with --watch."
    ),
    stuck_minutes: float = typer.Option(
        30.0,
        "--stuck-minutes",
        min=1,
        help="Uploads unprocessed for longer than this count as stuck.",
    ),
    timeout: float = typer.Option(
        2.0, "--timeout", min=0.1, max=60, help="Seconds each source may take to answer."
    ),
) -> None:
    """Workers online and their queues, queue depths, tasks per minute and failures in the
    last hour, documents by status, stuck uploads, and the last sync/migrate run.
    Exit 1 when a source (broker, Redis, database) did not answer."""
    try:
        while True:
            with expected_errors():
                from s3w_tasks.status import gather

                report = gather(stuck_minutes=stuck_minutes, timeout=timeout)
            if as_json:
                print_json(report)
            else:
                if watch:  # a terminal is cleared; a pipe gets one screen after another
                    typer.echo("\x1b[2J\x1b[H" if sys.stdout.isatty() else "", nl=False)
                for line in render(report):
                    typer.echo(line)
            if not watch:
                break
            time.sleep(interval)
    except KeyboardInterrupt:  # the way to leave --watch
        if not watch:
            raise
        return
    if report["problems"]:
        raise typer.Exit(1)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"


def render(report: dict[str, Any]) -> list[str]:
    """The text screen, one section per block."""
    lines = [f"s3w status  {_when(time.time())}  deployment {report['deployment']}", ""]
    workers = report["workers"]
    if workers is None:
        lines.append("workers      unknown (broker did not answer)")
    elif not workers:
        lines.append("workers      NONE ONLINE")
    else:
        lines.append(f"workers      {len(workers)} online")
        lines += [f"  {w['name']}  queues {', '.join(w['queues'])}" for w in workers]
    queues = report["queues"]
    if queues is not None:
        lines.append("queues       " + ", ".join(f"{q} {n} waiting" for q, n in queues.items()))
    tasks = report["tasks"]
    if tasks is not None:
        hour = tasks["last_hour"]
        lines.append(f"tasks        {tasks['per_minute']} per minute (last 5 minutes)")
        lines.append(
            f"  last hour  ok {hour['ok']}, failed {hour['failed']}, "
            f"retried {hour['retried']}, rejected {hour['rejected']}"
        )
    documents = report["documents"]
    if documents is not None:
        lines.append("documents")
        lines.append(f"  preview     {_counts(documents['preview_status'])}")
        lines.append(f"  processing  {_counts(documents['processing_status'])}")
    stuck = report["stuck_uploads"]
    if stuck is not None:
        more = "at least " if stuck["at_least"] else ""
        lines.append(
            f"stuck        {more}{stuck['count']} uploads unprocessed for more than "
            f"{stuck['older_than_minutes']:g} minutes"
            + (" (s3w reprocess-uploads sends them again)" if stuck["count"] else "")
        )
        lines += [f"  {d['document_id']}  {d['status']}" for d in stuck["documents"]]
    runs = report["last_runs"]
    if runs is not None:
        for command, run in runs.items():
            if run is None:
                continue
            verdict = "ok" if run["ok"] else "FAILED"
            counts = _counts({k: v for k, v in run["items"].items() if v})
            lines.append(
                f"last {command:<8}{verdict} at {_when(run['finished'])} "
                f"in {run['seconds']:.1f} s: {counts}"
            )
        if not any(runs.values()):
            lines.append("last runs    none recorded")
    for problem in report["problems"]:
        lines.append(f"problem      {problem}")
    return lines

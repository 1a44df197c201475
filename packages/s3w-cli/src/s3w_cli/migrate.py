"""``s3w migrate``: copy the archive to another bucket or provider, verify it, say how to switch.

The engine is :mod:`s3w_storage.migrate`; ``--verify=db`` reads Papermerge's tables through
s3w_tasks (imported only then).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand

from s3w_cli.options import JSON_SUMMARY, PROGRESS_BAR, dry_run_option, jobs_option
from s3w_cli.output import SHOWN, expected_errors, human_size, print_json
from s3w_cli.publish import publish_result

if TYPE_CHECKING:
    from s3w_storage.migrate import (
        MigrateOptions,
        MigratePlan,
        MigrateResult,
        VerifyReport,
    )
    from s3w_storage.objects import Storage
    from s3w_storage.settings import StorageSettings


class MigrateCommand(TyperCommand):
    """Lets ``--verify`` stand alone (objects) or take a value (``--verify=db``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = ["--verify=objects" if arg == "--verify" else arg for arg in args]
        return super().parse_args(ctx, args)


def _verify_mode(value: str | None) -> str | None:
    if value is not None and value not in ("objects", "db"):
        raise typer.BadParameter("use --verify (objects) or --verify=db")
    return value


def migrate(
    to_env: Path | None = typer.Option(
        None,
        "--to-env",
        dir_okay=False,
        help="The target's settings: an env file with the same variable names.",
    ),
    to_backend: str | None = typer.Option(
        None, "--to-backend", help="Target STORAGE_BACKEND (aws or cloudflare)."
    ),
    to_bucket: str | None = typer.Option(None, "--to-bucket", help="Target PM_S3_BUCKET_NAME."),
    to_prefix: str | None = typer.Option(
        None, "--to-prefix", help="Target PM_PREFIX ('' for none)."
    ),
    to_endpoint_url: str | None = typer.Option(
        None, "--to-endpoint-url", help="Target PM_S3_ENDPOINT_URL ('' for AWS itself)."
    ),
    to_region: str | None = typer.Option(None, "--to-region", help="Target AWS_REGION_NAME."),
    to_account_id: str | None = typer.Option(None, "--to-account-id", help="Target R2_ACCOUNT_ID."),
    dry_run: bool = dry_run_option("Print the plan and the bytes to move; copy nothing."),
    verify_mode: str | None = typer.Option(
        None,
        "--verify",
        metavar="[=db]",
        callback=_verify_mode,
        help="Afterwards compare both sides object by object; --verify=db also checks every "
        "file, ready thumbnail and page preview the database (PM_DB_URL) names.",
    ),
    max_objects: int | None = typer.Option(
        None, "--max-objects", min=0, help="Copy at most N objects in this run."
    ),
    jobs: int | None = jobs_option("copies (default: the target's PM_S3_MAX_CONCURRENCY)"),
    server_side: bool | None = typer.Option(
        None,
        "--server-side/--no-server-side",
        help="Let the server copy (default: when one endpoint and credentials reach both).",
    ),
    as_json: bool = JSON_SUMMARY,
    progress: bool | None = PROGRESS_BAR,
) -> None:
    """Copy every object under the current bucket and prefix to the target, copying only what
    is missing or different; exit 1 if anything failed or differs."""
    with expected_errors():
        from s3w_storage.migrate import MigrateOptions, target_settings
        from s3w_storage.migrate import migrate as run_migrate
        from s3w_storage.objects import Storage, get_storage

        source = get_storage()
        overrides = {
            name: value
            for name, value in (
                ("STORAGE_BACKEND", to_backend),
                ("PM_S3_BUCKET_NAME", to_bucket),
                ("PM_PREFIX", to_prefix),
                ("PM_S3_ENDPOINT_URL", to_endpoint_url),
                ("AWS_REGION_NAME", to_region),
                ("R2_ACCOUNT_ID", to_account_id),
            )
            if value is not None
        }
        if to_env is None and not overrides:
            raise typer.BadParameter("give the target: --to-env FILE or --to-bucket etc.")
        settings = target_settings(source.settings, env_file=to_env, overrides=overrides)
        target = Storage.for_settings(settings)
        expected = None
        if verify_mode == "db":
            from s3w_tasks.expected import expected_keys

            expected = expected_keys()
        options = MigrateOptions(
            dry_run=dry_run, jobs=jobs, server_side=server_side, limit=max_objects
        )
        plans: list[MigratePlan] = []
        listings = None
        if dry_run and verify_mode is not None:  # nothing changes between plan and verify
            from s3w_storage.migrate import list_both

            listings = list_both(source, target, jobs=jobs or settings.max_concurrency)
        show = progress if progress is not None else sys.stderr.isatty() and not as_json
        if show and not dry_run:
            result = _with_progress(source, target, options, plans.append)
        else:
            result = run_migrate(source, target, options, on_plan=plans.append, listings=listings)
        report = None
        if verify_mode is not None:
            from s3w_storage.migrate import verify

            report = verify(source, target, jobs=jobs, expected=expected, listings=listings)
    more = {}
    if report is not None:
        more["differences"] = len(report.missing) + len(report.different) + len(report.errors)
    publish_result("migrate", result, ok=result.ok and (report is None or report.ok), more=more)
    if as_json:
        data: dict[str, Any] = {"migrate": result.to_dict()}
        if dry_run and plans:
            data["plan"] = [
                {"key": c.key, "size": c.size, "reason": c.reason} for c in plans[0].copies
            ]
        if report is not None:
            data["verify"] = report.to_dict()
        data["switch"] = _switch_lines(source.settings, settings, to_env)
        print_json(data)
    else:
        if dry_run and plans:
            for copy in plans[0].copies:
                typer.echo(f"copy {copy.key} ({copy.reason}, {human_size(copy.size)})")
        _summary(result, source, target)
        if report is not None:
            _report(report)
        _switch(result, report, source.settings, settings, _target_args(to_env, overrides), to_env)
    if not result.ok or (report is not None and not report.ok):
        raise typer.Exit(1)


def _with_progress(
    source: Storage,
    target: Storage,
    options: MigrateOptions,
    on_plan: Callable[[MigratePlan], None],
) -> MigrateResult:
    """The migration with a progress bar on stderr: objects copied, bytes, rate, time left."""
    from s3w_cli.output import TransferBar
    from s3w_storage.migrate import migrate as run_migrate

    bar = TransferBar("objects", "listing")

    def planned(plan: MigratePlan) -> None:
        limit = options.limit
        count = len(plan.copies) if limit is None else min(limit, len(plan.copies))
        bar.plan(count, plan.copy_bytes, phase="copying")
        on_plan(plan)

    with bar:
        return run_migrate(source, target, options, progress=bar.advance, on_plan=planned)


def _where(storage: Storage) -> str:
    place = f"s3://{storage.bucket}/{storage.prefix + '/' if storage.prefix else ''}"
    return f"{place} at {storage.settings.effective_endpoint or 'AWS'}"


def _summary(result: MigrateResult, source: Storage, target: Storage) -> None:
    from s3w_cli.output import print_summary

    title = f"{'plan' if result.dry_run else 'migrate'}: {_where(source)} -> {_where(target)}"
    rows = [
        ("source objects", f"{result.source_objects} ({human_size(result.source_bytes)})"),
        ("target objects before", f"{result.target_objects}"),
        ("unchanged", f"{result.unchanged}"),
    ]
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(result.reasons.items()))
    if result.dry_run:
        rows.append(("would copy", f"{result.planned} ({human_size(result.planned_bytes)})"))
    else:
        rows.append(("copied", f"{result.copied} ({human_size(result.copied_bytes)})"))
        if result.deferred:
            rows.append(("left for the next run", f"{result.deferred}"))
        rows.append(("failed", f"{len(result.failures)}"))
    if reasons:
        rows.append(("why", reasons))
    rows.append(("copy", "server-side" if result.server_side else "streamed through s3w"))
    if result.hashed:
        rows.append(("objects read to compare MD5s", f"{result.hashed}"))
    if result.aborted_uploads:
        rows.append(("unfinished uploads aborted", f"{result.aborted_uploads}"))
    if not result.dry_run:
        rows.append(("seconds", f"{result.seconds:.1f}"))
    print_summary(title, rows, [(f.key, f.why) for f in result.failures], shown=SHOWN)


def _report(report: VerifyReport) -> None:
    """Plain lines (never wrapped: keys are for copying)."""
    verdict = "OK" if report.ok else "DIFFERENCES"
    typer.echo(
        f"verify: {verdict}: source {report.source_objects} objects ({human_size(report.source_bytes)}), "
        f"target {report.target_objects} ({human_size(report.target_bytes)}), "
        f"{report.matched} match"
    )
    groups: list[tuple[str, list[str]]] = [
        ("missing on the target", report.missing),
        ("only on the target", report.extra),
        ("different", [f"{d.key} ({d.why})" for d in report.different]),
        ("could not compare", [f"{d.key} ({d.why})" for d in report.errors]),
        ("named by the database, missing on the target", report.db_missing),
        (
            "named by the database, on neither side (not a migration problem)",
            report.db_absent_everywhere,
        ),
    ]
    if report.db_checked:
        typer.echo(f"verify: {report.db_checked} keys named by the database checked")
    for title, keys in groups:
        if not keys:
            continue
        typer.echo(f"{title}: {len(keys)}")
        for key in keys[:SHOWN]:
            typer.echo(f"  {key}")
        if len(keys) > SHOWN:
            typer.echo(f"  ... and {len(keys) - SHOWN} more (see --json)")


def _switch_lines(
    source: StorageSettings, target: StorageSettings, env_file: Path | None
) -> list[str]:
    from s3w_storage.migrate.target import SECRET_NAMES, switch_variables

    lines = []
    for name, value in switch_variables(source, target):
        if value is None:
            lines.append(f"unset {name}")
        elif name in SECRET_NAMES and env_file is not None:
            lines.append(f"{name}={value}  # the value in {env_file}")
        else:
            lines.append(f"{name}={value}")
    return lines


def _switch(
    result: MigrateResult,
    report: VerifyReport | None,
    source: StorageSettings,
    target: StorageSettings,
    rerun: list[str],
    env_file: Path | None,
) -> None:
    """The closing words: whether it is safe to switch, the variables, the command."""
    command = " ".join(shlex.quote(a) for a in ["s3w", "migrate", *rerun, "--verify"])
    typer.echo("")
    if result.dry_run:
        typer.echo("Nothing was copied (--dry-run).")
    if report is not None and not report.ok:
        typer.echo("Not safe to switch: the target differs (above). Copy again, then verify.")
    elif not result.ok or result.deferred:
        typer.echo("Not yet safe to switch: run this again until nothing fails or is left.")
    elif report is None:
        typer.echo("Before switching, stop uploads, then copy the rest and check with: " + command)
    else:
        typer.echo("Safe to switch: the target holds every source object, verified.")
    typer.echo("To switch Papermerge and the worker, set these variables (secrets masked):")
    for line in _switch_lines(source, target, env_file):
        typer.echo(f"  {line}")
    typer.echo(
        "then restart both with them (docker compose: docker compose up -d --force-recreate),"
    )
    typer.echo(f"and copy what arrived meanwhile, still with the old variables: {command}")


#: The --to-* option that sets each target variable.
OPTION_FOR = {
    "STORAGE_BACKEND": "--to-backend",
    "PM_S3_BUCKET_NAME": "--to-bucket",
    "PM_PREFIX": "--to-prefix",
    "PM_S3_ENDPOINT_URL": "--to-endpoint-url",
    "AWS_REGION_NAME": "--to-region",
    "R2_ACCOUNT_ID": "--to-account-id",
}


def _target_args(env_file: Path | None, overrides: dict[str, str]) -> list[str]:
    """The options that name this target again, for the command to repeat."""
    args = ["--to-env", str(env_file)] if env_file is not None else []
    for name, value in overrides.items():
        args.append(f"{OPTION_FOR[name]}={value}")
    return args

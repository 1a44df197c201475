"""``s3w info``, ``s3w config`` and ``s3w doctor``: what is configured and whether it works."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from typing import Any

import typer

from s3w_cli.output import MASK, expected_errors, fail, mask_url, one_line, print_json

_CREDENTIAL_ENV = {
    "aws": (("AWS_ACCESS_KEY_ID",), ("AWS_SECRET_ACCESS_KEY",)),
    "cloudflare": (
        ("R2_ACCESS_KEY_ID", "PM_R2_ACCESS_KEY_ID"),
        ("R2_SECRET_ACCESS_KEY", "PM_R2_SECRET_ACCESS_KEY"),
    ),
}


def _credential_source(settings: Any) -> str:
    """Where the credentials come from, never what they are."""
    key_names, secret_names = _CREDENTIAL_ENV[settings.backend]
    if settings.credentials() is not None:
        key = next((n for n in key_names if os.environ.get(n)), key_names[0])
        secret = next((n for n in secret_names if os.environ.get(n)), secret_names[0])
        return f"{key} and {secret} from the environment"
    if settings.backend == "cloudflare":
        return "missing: set R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY"
    from s3w_storage.client import credential_chain_method

    method = credential_chain_method()
    if method is None:
        return "none found (boto3's credential chain is empty)"
    return f"boto3's credential chain ({method})"


def _queues() -> list[str] | str:
    try:
        from s3w_tasks.contract import default_queues

        return default_queues()
    except ImportError:
        return "s3w-tasks is not installed"


def info(
    check: bool = typer.Option(
        False, "--check", help="Write, read back and delete a small object in the bucket."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Backend, endpoint, region, bucket, prefix, modes and queues; where credentials came from."""
    with expected_errors():
        from s3w_storage import protection
        from s3w_storage.settings import load_settings

        settings = load_settings(check=check)
        report: dict[str, Any] = {
            "backend": settings.backend,
            "endpoint": settings.effective_endpoint or "AWS (regional endpoint)",
            "endpoint_source": settings.endpoint_source,
            "region": settings.effective_region or "boto3 default",
            "bucket": settings.bucket_name,
            "prefix": settings.prefix or "",
            "media_root": settings.media_root,
            "addressing_style": settings.effective_addressing_style,
            "checksum": f"{settings.checksum_algorithm} on every PUT and part "
            f"(PM_S3_CHECKSUM={settings.checksum}); downloads verified",
            "retries": f"{settings.retry_mode}, {settings.max_attempts} attempts",
            "archive": protection.summary(settings),  # encryption, classes, retention
            "credentials": _credential_source(settings),
            "queues": _queues(),
            "problems": settings.problems(),
        }
        if check:
            report["check"] = _round_trip()
    if as_json:
        print_json(report)
    else:
        width = max(len(k) for k in report)
        for name, value in report.items():
            if name == "problems":
                for problem in value:
                    typer.echo(f"{'problem':<{width}}  {problem}")
                continue
            shown = ", ".join(value) if isinstance(value, list) else value
            typer.echo(f"{name:<{width}}  {shown}")


def _round_trip() -> str:
    from s3w_storage.objects import get_storage

    storage = get_storage()
    key = f".s3w-check/{uuid.uuid4()}.txt"
    payload = b"s3w info --check\n"
    storage.upload_bytes(payload, key, content_type="text/plain")
    try:
        head = storage.head(key)
        if head is None or head.size != len(payload):
            fail(f"wrote {storage.full_key(key)} but could not read it back")
    finally:
        storage.delete([key]).raise_for_errors()
    return f"ok: wrote, read back and deleted {storage.full_key(key)} in {storage.bucket}"


def _masked_settings(model: Any) -> dict[str, Any]:
    from pydantic import SecretStr

    data: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            value = mask_url(secret) if "://" in secret else MASK
        elif isinstance(value, str) and "://" in value:
            value = mask_url(value)
        data[name] = value
    return data


def config() -> None:
    """The effective settings as JSON; secrets and URL passwords are masked."""
    with expected_errors():
        from s3w_storage.settings import load_settings

        storage = load_settings(check=False)
        data: dict[str, Any] = {"storage": _masked_settings(storage)}
        data["storage"]["problems"] = storage.problems()
        try:
            from s3w_tasks.settings import load_settings as load_task_settings
        except ImportError:
            data["worker"] = None
        else:
            data["worker"] = _masked_settings(load_task_settings())
            data["worker"]["queues"] = _queues()
    print_json(data)


# ------------------------------------------------------------------------------ doctor

Check = Callable[[], str]


def _check_storage() -> str:
    from s3w_storage.objects import get_storage

    storage = get_storage()
    storage.check_bucket()
    next(iter(storage.iter_objects()), None)
    return f"bucket {storage.bucket} at {storage.settings.effective_endpoint or 'AWS'} answers"


def _check_database() -> str:
    from sqlalchemy import text

    from s3w_tasks.db import get_engine
    from s3w_tasks.settings import get_settings

    get_settings().require_db_url()
    with get_engine().connect() as connection:
        tables = connection.execute(
            text(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_name IN ('documents', 'document_versions', 'pages', 'nodes')"
            )
        ).scalar_one()
    if tables < 4:
        raise ValueError(f"connected, but only {tables} of the 4 Papermerge tables exist")
    return "connected; Papermerge tables present"


def _check_broker() -> str:
    from kombu.connection import Connection
    from kombu.exceptions import OperationalError

    from s3w_tasks.settings import get_settings

    url = get_settings().broker_url
    try:
        with Connection(url, connect_timeout=5) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1, timeout=5)
    except OperationalError as exc:
        raise ConnectionError(f"{mask_url(url)}: {exc}") from exc
    return f"{mask_url(url)} answers"


def _check_pdftoppm() -> str:
    import subprocess

    from s3w_thumbs import active_renderer

    path = shutil.which("pdftoppm")
    renderer = active_renderer()
    if path is None:
        if renderer == "poppler":
            raise FileNotFoundError("pdftoppm is not on PATH (apt-get install poppler-utils)")
        return f"not installed; not needed with the {renderer} renderer"
    version = subprocess.run(
        [path, "-v"], capture_output=True, text=True, timeout=10, check=False
    ).stderr.splitlines()
    return f"{path} ({version[0] if version else 'unknown version'}); renderer {renderer}"


def _check_media_root() -> str:
    from s3w_storage.settings import load_settings

    root = load_settings(check=False).media_root
    if not os.path.isdir(root):
        raise FileNotFoundError(f"media root {root} does not exist (PM_MEDIA_ROOT)")
    if not os.access(root, os.R_OK | os.X_OK):
        raise PermissionError(f"media root {root} is not readable")
    if not os.access(root, os.W_OK):
        raise PermissionError(f"media root {root} is not writable (downloads land here)")
    return f"{os.path.abspath(root)} is readable and writable"


def _check_versioning() -> str:
    from s3w_storage.lockcheck import check_versioning
    from s3w_storage.objects import get_storage

    return check_versioning(get_storage())


def _check_object_lock() -> str:
    from s3w_storage.lockcheck import check_object_lock
    from s3w_storage.objects import get_storage

    return check_object_lock(get_storage())


CHECKS: dict[str, Check] = {
    "s3": _check_storage,
    "versioning": _check_versioning,
    "lock": _check_object_lock,
    "database": _check_database,
    "broker": _check_broker,
    "pdftoppm": _check_pdftoppm,
    "media root": _check_media_root,
}


def doctor(as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON.")) -> None:
    """Check S3, the database, the broker, pdftoppm and the media root; one line each."""
    from s3w_cli.output import expected_types, state

    results: list[dict[str, Any]] = []
    for name, check in CHECKS.items():
        try:
            detail, ok = check(), True
        except BaseException as exc:  # each check imports what it needs; sort it out after
            if state.verbose or not isinstance(exc, (*expected_types(), ImportError)):
                raise
            detail, ok = one_line(exc), False
        results.append({"check": name, "ok": ok, "detail": detail})
        if not as_json:
            typer.echo(f"{'ok  ' if ok else 'FAIL'}  {name:<10}  {detail}")
    if as_json:
        print_json(results)
    if not all(r["ok"] for r in results):
        raise typer.Exit(1)

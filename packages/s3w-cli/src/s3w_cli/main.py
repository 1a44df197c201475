"""The root `s3w` Typer application."""

import typer

from s3w_cli import __version__

app = typer.Typer(
    name="s3w", help="Operate Papermerge media on S3-compatible storage.", no_args_is_help=True
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
) -> None:
    """Operate Papermerge media on S3-compatible storage."""

"""``python -m s3w_cli``: the ``s3w`` command."""

from s3w_cli.main import app

app(prog_name="s3w")

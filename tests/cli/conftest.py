"""Helpers for the CLI tests: run ``s3w`` in-process and check no secret ever shows."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from s3w_cli.output import state

#: Environment variables whose values must never appear in any command's output.
SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "R2_SECRET_ACCESS_KEY",
    "S3W_TEST_DB_PASSWORD",
    "S3W_FLEET_KEY",
    "PM_S3_SSE_C_KEY",
)


@pytest.fixture
def s3w(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``s3w(*args, code=0)`` runs the command and returns the result; stdout and stderr are
    checked for every secret value set in the environment at the time."""
    runner = CliRunner()

    def run(*args: str, code: int | None = 0) -> Any:
        from s3w_cli.main import app

        state.verbose = False
        result = runner.invoke(app, list(args), catch_exceptions=True)
        seen = result.stdout + result.stderr
        for name in SECRET_VARIABLES:
            value = os.environ.get(name)
            if value:
                assert value not in seen, f"{name}'s value appeared in the output of {args}"
        if code is not None:
            assert result.exit_code == code, (
                f"s3w {' '.join(args)}: expected exit {code}, got {result.exit_code}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}\nexception: {result.exception!r}"
            )
        return result

    return run

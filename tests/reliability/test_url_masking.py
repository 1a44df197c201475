"""Passwords with URL delimiters in them never reach the output of ``s3w config``/``info``/
``doctor``, nor a log line made from a message.

PostgreSQL (SQLAlchemy) and Redis (kombu) accept passwords containing ``/ # ? @ : %`` in
their URLs; a masker that splits the URL with another parser cuts the password at the first
``/``, ``#`` or ``?`` and prints the rest. Each password below is put in ``PM_DB_URL`` and
``PM_REDIS_URL``, and the three commands must show neither it nor any piece of it of four or
more characters.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.celery_worker import ROOT
from tests.support.results import record
from tests.support.services import find_binary
from tests.support.stack import Stack

PASSWORDS = [
    "Sup3r/S3cretValue",
    "hash#InTheMiddle",
    "ask?QuestionMark",
    "colon:SeparatedPw",
    "percent%41Encoded",
    "all/#?:%Delims",
    "at@SignInside",
]


def _pieces(secret: str) -> list[str]:
    """The secret's runs of 4+ characters between URL delimiters (what a cut would leak)."""
    import re

    return [p for p in re.split(r"[/#?@:%]", secret) if len(p) >= 4]


@pytest.mark.parametrize("command", [["config"], ["info"], ["doctor"]])
def test_passwords_with_delimiters_are_masked(
    make_stack: Callable[..., Stack], command: list[str]
) -> None:
    st = make_stack()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PM_", "S3W_"))}
    leaks: list[str] = []
    for secret in PASSWORDS:
        env: dict[str, Any] = {
            **base,
            **st.env,
            "PM_DB_URL": f"postgresql://postgres:{secret}@127.0.0.1:5432/{uuid.uuid4().hex}",
            "PM_REDIS_URL": f"redis://:{secret}@127.0.0.1:6379/9",
        }
        done = subprocess.run(
            [find_binary("s3w"), *command],
            capture_output=True,
            env=env,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        out = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        found = [p for p in [secret, *_pieces(secret)] if p in out]
        if found:
            leaks.append(f"{secret!r}: {found} in {out[:600]!r}")
    record(
        f"Passwords with / # ? @ : % in URLs (s3w {command[0]})",
        block="security",
        result=f"{len(PASSWORDS)} passwords in PM_DB_URL and PM_REDIS_URL, {len(leaks)} leaked",
        figure=f"{len(leaks)} leaks",
    )
    assert not leaks, "\n".join(leaks)

"""Time the README's test command and write the result into docs/testing.md.

    python scripts/time_test_run.py                 # runs `uv run nox`
    python scripts/time_test_run.py -- uv run nox -s lint    # any other command

The command runs with this process's environment (services from S3W_TEST_* when set, else
started by the test fixtures). The block between the markers in docs/testing.md is replaced
with the command, its wall time, its exit status and the machine it ran on; nothing else in
the file changes. Exits with the command's status.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "testing.md"
BEGIN = "<!-- BEGIN test-run-time: written by scripts/time_test_run.py, do not edit -->"
END = "<!-- END test-run-time -->"


def services() -> str:
    found = []
    for name, variable in (("PostgreSQL", "S3W_TEST_DB_URL"), ("Redis", "S3W_TEST_REDIS_URL")):
        found.append(f"{name} {'running' if os.environ.get(variable) else 'started by fixtures'}")
    found.append("SeaweedFS started by fixtures")
    return ", ".join(found)


def block(command: list[str], seconds: float, status: int, *, existing: int) -> str:
    minutes, secs = divmod(round(seconds), 60)
    outcome = "passed" if status == 0 else f"failed (exit {status})"
    return "\n".join(
        [
            BEGIN,
            "",
            "| command | wall time | result | machine | services |",
            "|---|---:|---|---|---|",
            f"| `{shlex.join(command)}` | {minutes} min {secs:02d} s | {outcome} |"
            f" {os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} | {services()} |",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d} with"
            f" `python scripts/time_test_run.py{' -- ' + shlex.join(command) if command != DEFAULT else ''}`"
            + (
                " with no session environment made beforehand (each made during the run)."
                if not existing
                else f" ({existing} session environments existed before the run; the others"
                " were made during it)."
            ),
            "",
            END,
        ]
    )


DEFAULT = ["uv", "run", "nox"]


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else DEFAULT
    if not command:
        print("time_test_run.py: no command after --", file=sys.stderr)
        return 2
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        print(f"time_test_run.py: {DOC} has no {BEGIN} ... {END} block", file=sys.stderr)
        return 2
    nox_dir = ROOT / ".nox"
    existing = (
        sum(1 for d in nox_dir.iterdir() if (d / "pyvenv.cfg").exists()) if nox_dir.is_dir() else 0
    )
    started = time.monotonic()
    status = subprocess.run(command, cwd=ROOT, check=False).returncode
    seconds = time.monotonic() - started
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    DOC.write_text(
        pattern.sub(lambda _: block(command, seconds, status, existing=existing), text, count=1)
    )
    print(f"{shlex.join(command)}: {seconds:.0f} s, exit {status}; written to {DOC}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

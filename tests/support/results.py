"""Each scenario's figure, one JSON line per scenario, for docs/reliability.md.

``record("S3 outage", result="...", figure="...", **numbers)`` appends to the results file
(``S3W_TEST_RELIABILITY_RESULTS``, else ``build/reliability/results-<size>.jsonl``) and prints the
line, so a plain ``pytest -s`` shows it too. ``report.py`` turns the file into the table.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def full_size() -> bool:
    """True for the full-size run (``nox -s reliability -- --full``)."""
    return os.environ.get("S3W_TEST_RELIABILITY_FULL", "") == "1"


def size(ci: int, full: int) -> int:
    """The count for this run: ``ci`` by default, ``full`` with ``--full``."""
    return full if full_size() else ci


def results_path() -> Path:
    given = os.environ.get("S3W_TEST_RELIABILITY_RESULTS")
    if given:
        return Path(given)
    return ROOT / "build" / "reliability" / f"results-{'full' if full_size() else 'ci'}.jsonl"


def record(
    scenario: str, *, result: str, figure: str, block: str | None = None, **numbers: Any
) -> None:
    """Append one scenario's outcome: what happened (``result``) and its figure. ``block``
    names the generated block(s) of the docs (comma-separated) that ``report.py --write``
    puts the row in."""
    line = {
        "scenario": scenario,
        "block": block,
        "size": "full" if full_size() else "ci",
        "result": result,
        "figure": figure,
        "numbers": numbers,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")
    print(f"\n[reliability] {scenario}: {result} -- {figure}")

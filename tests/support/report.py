"""Print the reliability results file(s) as the Markdown table of docs/reliability.md, or
write the rows of each generated block into a doc.

    python tests/support/report.py build/reliability/results-ci.jsonl [more.jsonl ...]
    python tests/support/report.py --write docs/security.md results.jsonl [...]

The last line recorded for a scenario at a size wins (a re-run replaces an earlier one).
``--write`` replaces the body of every ``<!-- generated:NAME -->`` ... ``<!-- end generated -->``
block of the doc with the rows recorded with ``block=NAME``, and the command that ran them.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

BLOCK = re.compile(r"(<!-- generated:(\S+) -->\n)(.*?)(<!-- end generated -->)", re.DOTALL)


def _rows(paths: list[Path]) -> dict[tuple[str, str], dict[str, object]]:
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for path in paths:
        for raw in path.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                line = json.loads(raw)
                rows[(str(line["scenario"]), str(line["size"]))] = line
    return rows


def table(paths: list[Path], block: str | None = None) -> str:
    rows = _rows(paths)
    out = ["| scenario | size | result | figure |", "|---|---|---|---|"]
    for (scenario, size), line in rows.items():
        if block is not None and block not in str(line.get("block") or "").split(","):
            continue
        cells = [scenario, size, str(line["result"]), str(line["figure"])]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def write(doc: Path, paths: list[Path]) -> int:
    """Fill the doc's generated blocks; returns how many were filled."""
    text = doc.read_text(encoding="utf-8")
    filled = 0

    def fill(match: re.Match[str]) -> str:
        nonlocal filled
        filled += 1
        name = match.group(2)
        body = (
            f"Written by `python tests/support/report.py --write {doc.as_posix()}` from the "
            f"results of `uv run nox -s reliability`; rows recorded with block {name!r}.\n\n"
            + table(paths, name)
            + "\n"
        )
        return match.group(1) + body + match.group(4)

    doc.write_text(BLOCK.sub(fill, text), encoding="utf-8")
    return filled


def main(argv: list[str]) -> int:
    doc = None
    if argv[:1] == ["--write"] and len(argv) > 1:
        doc, argv = Path(argv[1]), argv[2:]
    paths = [Path(a) for a in argv if Path(a).exists()]
    if not paths:
        print("no results file", file=sys.stderr)
        return 1
    if doc is not None:
        if not write(doc, paths):
            print(f"{doc}: no <!-- generated:NAME --> block", file=sys.stderr)
            return 1
        return 0
    print(table(paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

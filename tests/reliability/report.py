"""Print the reliability results file(s) as the Markdown table of docs/reliability.md.

    python tests/reliability/report.py build/reliability/results-ci.jsonl [more.jsonl ...]

The last line recorded for a scenario at a size wins (a re-run replaces an earlier one).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(paths: list[Path]) -> str:
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for path in paths:
        for raw in path.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                line = json.loads(raw)
                rows[(str(line["scenario"]), str(line["size"]))] = line
    out = ["| scenario | size | result | figure |", "|---|---|---|---|"]
    for (scenario, size), line in rows.items():
        cells = [scenario, size, str(line["result"]), str(line["figure"])]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv if Path(a).exists()]
    if not paths:
        print("no results file", file=sys.stderr)
        return 1
    print(table(paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

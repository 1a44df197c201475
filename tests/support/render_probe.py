"""Render one file the way the worker does, in this process, and print one JSON line per step.

    python -m tests.support.render_probe <path> <mime type>

Steps: page count, thumbnail, page 1 previews (all four sizes), and for images the
conversion to PDF. Each step prints ``{"step", "ok"}``, ``{"step", "error", "message"}`` for
s3w-thumbs' documented errors, or ``{"step", "crash"}`` for anything else (a bug). Run by
:func:`tests.reliability.test_hostile_corpus.probe` under a memory ceiling.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main(path: Path, mime: str) -> int:
    import s3w_thumbs
    from s3w_thumbs import ThumbnailError

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("page_count", lambda: s3w_thumbs.page_count(path)),
        ("thumbnail", lambda: len(s3w_thumbs.render_thumbnail(path))),
        ("previews", lambda: sum(map(len, s3w_thumbs.render_page_previews(path, 1).values()))),
    ]
    if mime.startswith("image/"):
        out = Path(tempfile.mkdtemp()) / "converted.pdf"
        steps.append(("to_pdf", lambda: s3w_thumbs.image_to_pdf(path, out)))
    for step, call in steps:
        try:
            value = call()
        except ThumbnailError as exc:
            line: dict[str, Any] = {"step": step, "error": type(exc).__name__, "message": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - the probe reports what a bug would be
            line = {"step": step, "crash": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            line = {"step": step, "ok": value}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]), sys.argv[2]))

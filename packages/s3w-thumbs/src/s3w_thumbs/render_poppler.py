"""PDF pages to JPEG with poppler's `pdftoppm`, one run per page and width, no `pdfinfo` first."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from s3w_thumbs import budget, jpeg
from s3w_thumbs.deadline import Deadline
from s3w_thumbs.errors import (
    CorruptDocument,
    EncryptedDocument,
    PageOutOfRange,
    RendererUnavailable,
)

NAME = "poppler"
_MISSING = (
    "{tool} is not on PATH: install poppler (Debian/Ubuntu: apt-get install poppler-utils; "
    "Alpine: apk add poppler-utils) or set S3W_THUMBS_RENDERER=pdfium"
)
_LAST_PAGE = re.compile(r"after the last page \((\d+)\)")
_PAGES = re.compile(rb"^Pages:\s+(\d+)\s*$", re.MULTILINE)


def _run(args: list[str], path: Path, deadline: Deadline) -> subprocess.CompletedProcess[bytes]:
    tool = shutil.which(args[0])
    if tool is None:
        raise RendererUnavailable(_MISSING.format(tool=args[0]))
    try:
        return subprocess.run(
            budget.limited([tool, *args[1:]]),
            capture_output=True,
            check=False,
            timeout=max(deadline.remaining(), 0.001),
        )
    except FileNotFoundError as error:
        raise RendererUnavailable(_MISSING.format(tool=args[0])) from error
    except subprocess.TimeoutExpired as error:  # run() has already killed the child
        raise deadline.timeout() from error


def _fail(path: Path, result: subprocess.CompletedProcess[bytes], page_number: int) -> None:
    """Raise the documented error for a failed poppler run."""
    stderr = result.stderr.decode("utf-8", "replace")
    if "Incorrect password" in stderr:
        raise EncryptedDocument(
            f"{path.name}: the PDF is password-protected; upload a copy without a password"
        )
    last = _LAST_PAGE.search(stderr)
    if last:
        count = int(last.group(1))
        raise PageOutOfRange(
            f"{path.name}: page {page_number} asked for, the document has {count}",
            page_number=page_number,
            page_count=count,
        )
    lines = [line for line in stderr.splitlines() if line.strip()]
    detail = lines[-1] if lines else f"exit status {result.returncode}"
    raise CorruptDocument(
        f"{path.name}: poppler cannot read this PDF ({detail}); it may be damaged or truncated"
    )


def page_count(path: Path, deadline: Deadline) -> int:
    result = _run(["pdfinfo", "--", str(path.absolute())], path, deadline)
    found = _PAGES.search(result.stdout) if result.returncode == 0 else None
    if found is None:
        _fail(path, result, 1)
        raise CorruptDocument(f"{path.name}: pdfinfo reported no page count")
    count = budget.check_pages(path.name, int(found.group(1)))
    last = _run(
        ["pdfinfo", "-f", str(count), "-l", str(count), "--", str(path.absolute())], path, deadline
    )
    if last.returncode != 0:
        raise CorruptDocument(
            f"{path.name}: the PDF says it has {count:,} pages but page {count:,} cannot be "
            "loaded; it is damaged (its page count is a lie)"
        )
    return count


def command(path: Path, page_number: int, width: int) -> list[str]:
    """The `pdftoppm` call for one page at one width, JPEG on stdout."""
    options = f"quality={jpeg.QUALITY},optimize={'y' if jpeg.OPTIMIZE else 'n'}"
    page = str(page_number)
    # pdftoppm learns the page's height only while rendering: the bitmap is cropped to the
    # budget (a page taller than that shows its top part) rather than allocated whole.
    rows = max(1, min(budget.JPEG_MAX_SIDE, budget.get_budget().max_pixels // width))
    return [
        "pdftoppm",
        "-jpeg",
        "-jpegopt",
        options,
        "-singlefile",
        # What a viewer shows: the crop box, and width measured after the page's /Rotate.
        "-cropbox",
        "-scale-dimension-before-rotation",
        "-f",
        page,
        "-l",
        page,
        "-scale-to-x",
        str(width),
        "-scale-to-y",
        "-1",
        "-x",
        "0",
        "-y",
        "0",
        "-W",
        str(width),
        "-H",
        str(rows),
        "--",
        str(path.absolute()),
    ]


def render(path: Path, page_number: int, widths: Sequence[int], deadline: Deadline) -> list[bytes]:
    """JPEGs of one page at each width; the page count is never asked for."""
    out = []
    for width in widths:
        deadline.check()
        result = _run(command(path, page_number, width), path, deadline)
        if result.returncode != 0 or not result.stdout.startswith(b"\xff\xd8"):
            _fail(path, result, page_number)
        out.append(result.stdout)
    return out

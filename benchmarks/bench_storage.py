"""s3w-storage side by side with s5cmd on one throwaway SeaweedFS.

Measures, on the same server in the same run:

* many small objects uploaded with ``Storage.upload_many`` vs ``s5cmd cp 'dir/*'``;
* one large file uploaded with ``Storage.upload_file`` vs ``s5cmd cp``;
* the same file downloaded with ``Storage.download_file`` vs ``s5cmd cp`` (into tmpfs when
  ``/dev/shm`` exists, so the disk does not set the pace).

Prints a table of medians, ratios and client CPU seconds (user+sys: s3w's own process, the
s5cmd process), and writes it into docs/bench-storage.md at full size. Every object is
checked after every phase (small objects by ETag = MD5, the large file by its SHA-256 after
the download), so a tool that stored or returned a wrong byte fails the run. The storage
layer runs with its defaults (a SHA-256 checksum on every PUT and part) unless ``PM_S3_*``
tuning variables are set in the environment.

    python benchmarks/bench_storage.py            # 2,000 small objects, 1 GiB, 3 rounds
    python benchmarks/bench_storage.py --quick    # 200 small objects, 64 MiB, 1 round; prints only
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from s3w_storage.embedded import SeaweedS3, find_binary, start_seaweedfs  # noqa: E402

MiB = 2**20


# ------------------------------------------------------------------------------ setup


def _storage(server: SeaweedS3, bucket: str):  # type: ignore[no-untyped-def]
    """A Storage with the package defaults (plus any PM_S3_* tuning in the environment), made
    as a library user makes one: its boto3 client is built only if a call needs it."""
    from s3w_storage.objects import Storage
    from s3w_storage.settings import StorageSettings

    settings = StorageSettings(
        backend="aws",
        bucket_name=bucket,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        aws_region_name="us-east-1",
        endpoint_url=server.endpoint,
    )
    return Storage.for_settings(settings)


def _s5cmd_env(server: SeaweedS3) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_REGION="us-east-1",
    )
    return env


def _s5cmd(server: SeaweedS3, *args: str) -> None:
    subprocess.run(
        [find_binary("s5cmd"), "--endpoint-url", server.endpoint, *args],
        env=_s5cmd_env(server),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _write_random(path: Path, size: int) -> None:
    block = os.urandom(min(size, 8 * MiB))
    with path.open("wb") as out:
        left = size
        while left > 0:
            out.write(block[:left])
            left -= len(block)


#: Client CPU seconds of the last timed action (this process for s3w, children for s5cmd).
CPU: dict[str, list[float]] = {}


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(action: Callable[..., object], *args: object, cpu: str | None = None) -> float:
    before = _cpu()
    start = time.perf_counter()
    action(*args)
    elapsed = time.perf_counter() - start
    if cpu is not None:
        CPU.setdefault(cpu, []).append(_cpu() - before)
    return elapsed


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- many small objects


def _upload_chunk(args: tuple[str, str, str, str, list[tuple[str, str]], int]) -> int:
    """One process's share of a multi-process upload (the sync engine's processes x threads)."""
    endpoint, access, secret, bucket, items, jobs = args
    server = SeaweedS3(endpoint=endpoint, access_key=access, secret_key=secret, workdir=Path())
    results = _storage(server, bucket).upload_many(items, jobs=jobs)
    return sum(1 for _key, error in results if error is not None)


def _upload_many(
    server: SeaweedS3, bucket: str, items: list[tuple[str, str]], processes: int, jobs: int | None
) -> None:
    if processes <= 1:
        failed = [k for k, e in _storage(server, bucket).upload_many(items, jobs=jobs) if e]
    else:
        shares = [items[i::processes] for i in range(processes)]
        args = [
            (server.endpoint, server.access_key, server.secret_key, bucket, share, jobs or 16)
            for share in shares
        ]
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            failed = [n for n in pool.map(_upload_chunk, args) if n]
    if failed:
        raise RuntimeError(f"upload_many failed for {failed[:3]}")


def bench_small(
    server: SeaweedS3, work: Path, count: int, rounds: int, processes: int, jobs: int | None
) -> tuple[list[float], list[float]]:
    folder = work / "small"
    folder.mkdir()
    for i in range(count):
        (folder / f"obj-{i:05d}.txt").write_bytes(os.urandom(4096))
    names = sorted(p.name for p in folder.iterdir())
    ours: list[float] = []
    theirs: list[float] = []
    for round_ in range(rounds):
        bucket = f"small-{round_}-{uuid.uuid4().hex[:8]}"
        storage = _storage(server, bucket)
        storage.client.create_bucket(Bucket=bucket)
        # SeaweedFS allocates a new bucket's volumes on its first write (seconds, once):
        # one object first, so that neither tool is charged for it.
        storage.client.put_object(Bucket=bucket, Key="warm-up", Body=b"")
        items = [(str(folder / n), f"s3w/{n}") for n in names]
        mine = (ours, _upload_many, (server, bucket, items, processes, jobs))
        s5cmd = (theirs, _s5cmd, (server, "cp", f"{folder}/*", f"s3://{bucket}/s5cmd/"))
        # Each tool goes first in turn.
        pairs = [(mine, "small s3w"), (s5cmd, "small s5cmd")]
        for (times, action, args), label in pairs if round_ % 2 == 0 else pairs[::-1]:
            times.append(_timed(action, *args, cpu=label))
        expected = {n: _md5_file(folder / n) for n in names}
        for prefix in ("s3w/", "s5cmd/"):
            stored = {o.key[len(prefix) :]: o.etag for o in storage.iter_objects(prefix)}
            if stored != expected:
                wrong = sum(1 for n in expected if stored.get(n) != expected[n])
                raise RuntimeError(f"{prefix}: {wrong} of {count} objects missing or different")
        storage.delete_prefix("s3w/").raise_for_errors()
        storage.delete_prefix("s5cmd/").raise_for_errors()
    return ours, theirs


# ---------------------------------------------------------------------- one large file


def bench_large(
    server: SeaweedS3, work: Path, fast: Path, size: int, rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
    source = work / "large.bin"
    _write_random(source, size)
    bucket = f"large-{uuid.uuid4().hex[:8]}"
    storage = _storage(server, bucket)
    storage.client.create_bucket(Bucket=bucket)
    up: tuple[list[float], list[float]] = ([], [])
    down: tuple[list[float], list[float]] = ([], [])
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    for _ in range(rounds):
        up[0].append(_timed(lambda: storage.upload_file(source, "s3w/large.bin"), cpu="upload s3w"))
        up[1].append(
            _timed(
                lambda: _s5cmd(server, "cp", str(source), f"s3://{bucket}/s5cmd/large.bin"),
                cpu="upload s5cmd",
            )
        )
        for key in ("s3w/large.bin", "s5cmd/large.bin"):
            info = storage.head(key)
            if info is None or info.size != size:
                raise RuntimeError(f"{key} is not {size} bytes: {info}")
        ours_dest = fast / "ours.bin"
        theirs_dest = fast / "theirs.bin"
        down[0].append(
            _timed(storage.download_file, "s3w/large.bin", ours_dest, cpu="download s3w")
        )
        down[1].append(
            _timed(
                _s5cmd,
                server,
                "cp",
                f"s3://{bucket}/s5cmd/large.bin",
                str(theirs_dest),
                cpu="download s5cmd",
            )
        )
        for dest in (ours_dest, theirs_dest):
            if hashlib.sha256(dest.read_bytes()).hexdigest() != digest:
                raise RuntimeError(f"{dest} differs from the uploaded file")
            dest.unlink()
        storage.delete(["s3w/large.bin", "s5cmd/large.bin"]).raise_for_errors()
    return {"upload": up, "download": down}


# ----------------------------------------------------------------------------- report


def _row(
    name: str, ours: list[float], theirs: list[float], target: str, cpu: str, size: int = 0
) -> str:
    a, b = statistics.median(ours), statistics.median(theirs)
    ratio = a / b if b else float("inf")
    mine, other = statistics.median(CPU[f"{cpu} s3w"]), statistics.median(CPU[f"{cpu} s5cmd"])
    rates = f" ({size / MiB / a:,.0f} vs {size / MiB / b:,.0f} MiB/s)" if size else ""
    return f"| {name} | {a:.2f} | {b:.2f} | {ratio:.2f}x{rates} | {mine:.2f} | {other:.2f} | {target} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (CI)")
    parser.add_argument("--small", type=int, help="number of small objects (2000)")
    parser.add_argument("--large-mib", type=int, help="large file size in MiB (1024)")
    parser.add_argument("--rounds", type=int, help="rounds; medians are reported (3)")
    parser.add_argument("--processes", type=int, default=1, help="processes for upload_many")
    parser.add_argument("--jobs", type=int, help="threads per process for upload_many")
    args = parser.parse_args(argv)
    small = args.small or (200 if args.quick else 2000)
    size = (args.large_mib or (64 if args.quick else 1024)) * MiB
    rounds = args.rounds or (1 if args.quick else 3)

    shm = Path("/dev/shm")
    fast_base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    work = Path(tempfile.mkdtemp(prefix="s3w-bench-"))
    fast = Path(tempfile.mkdtemp(prefix="s3w-bench-", dir=fast_base))
    # The server keeps its data in tmpfs too, so neither tool waits on the disk.
    server = start_seaweedfs(access_key="bench", secret_key="bench-" + uuid.uuid4().hex, base=fast)
    try:
        print(
            f"s3w-storage vs s5cmd on SeaweedFS {server.endpoint}: {small} small objects, "
            f"{size // MiB} MiB file, {rounds} round(s), upload_many with "
            f"{args.processes} process(es) x {args.jobs or 'default'} threads; "
            f"downloads into {fast}",
            flush=True,
        )
        small_times = bench_small(server, work, small, rounds, args.processes, args.jobs)
        large = bench_large(server, work, fast, size, rounds)
    finally:
        server.stop()
        shutil.rmtree(fast, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    per_1000 = 1000 / small
    rows = [
        f"{small:,} small objects (4 KiB), {size // MiB:,} MiB file, medians of {rounds} "
        "round(s); wall seconds; ratio = s3w's time / s5cmd's; CPU = client user+sys seconds. "
        "Every object verified after every phase.",
        "",
        "| operation | s3w s | s5cmd s | ratio | s3w CPU s | s5cmd CPU s | target |",
        "|---|---:|---:|---|---:|---:|---|",
        _row(f"{small:,} small objects, upload", *small_times, "time <= 1.0x s5cmd", "small"),
        _row(f"{size // MiB:,} MiB file, upload", *large["upload"], "time <= 1.0x", "upload", size),
        _row(
            f"{size // MiB:,} MiB file, download",
            *large["download"],
            "rate >= 1.0x",
            "download",
            size,
        ),
        "",
        f"Client CPU per 1,000 small PUTs: s3w {statistics.median(CPU['small s3w']) * per_1000:.2f} s, "
        f"s5cmd {statistics.median(CPU['small s5cmd']) * per_1000:.2f} s (target: s3w <= s5cmd).",
    ]
    table = "\n".join(rows)
    print()
    print(table)
    if not args.quick:
        doc = ROOT / "docs" / "bench-storage.md"
        text = doc.read_text()
        start, end = (
            "<!-- generated by benchmarks/bench_storage.py -->",
            "<!-- end of generated block -->",
        )
        block = f"{start}\n```console\n{' '.join(['python', 'benchmarks/bench_storage.py', *(argv or sys.argv[1:])])}\n```\n\n{table}\n{end}"
        if start in text:
            text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        doc.write_text(text)
        print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

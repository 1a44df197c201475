"""`s3w migrate` side by side with `rclone copy` and `rclone check` between two SeaweedFS servers.

Two embedded SeaweedFS servers with different credentials stand for two providers. The
generated Papermerge-shaped tree (benchmarks/_tree.py) is put into the first server's bucket
under a prefix; each round then migrates it into a fresh bucket on the second server with
each tool, and verifies it:

* copy:   `s3w migrate --to-env target.env`  vs  `rclone copy --fast-list --transfers 16
          --checkers 16` (the tuning of the sync benchmark);
* verify: `s3w migrate --to-env target.env --dry-run --verify` (lists both sides once,
          compares count, size and MD5)  vs  `rclone check --fast-list --checkers 16`.

Prints medians and ratios (s3w / rclone; below 1.0 s3w is faster).

    python benchmarks/bench_migrate.py            # 20,000 files, 3 rounds; writes docs/bench-migrate.md
    python benchmarks/bench_migrate.py --quick    # 2,000 files, 1 round; prints only

rclone is skipped with a note when it is not installed (Debian: `apt-get install rclone`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _tree import make_tree  # noqa: E402
from s3w_storage.embedded import SeaweedS3, start_seaweedfs  # noqa: E402

DOCS = ROOT / "docs"
SOURCE_BUCKET = "papermerge"
SOURCE_PREFIX = "pm"
RCLONE_TUNING = ["--fast-list", "--transfers", "16", "--checkers", "16"]


def _clean_env() -> dict[str, str]:
    """This environment without storage settings. Bytecode may be written: an installed s3w
    has its modules compiled (pip and ``uv --compile-bytecode`` do it), so it should not pay
    for compiling them on every start here."""
    prefixes = ("AWS_", "PM_", "R2_", "S3W_", "RCLONE_", "STORAGE_BACKEND")
    skip = {"PYTHONDONTWRITEBYTECODE"}
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in skip}


def _storage_env(server: SeaweedS3, bucket: str, prefix: str = "") -> dict[str, str]:
    env = {
        "STORAGE_BACKEND": "aws",
        "PM_S3_BUCKET_NAME": bucket,
        "PM_S3_ENDPOINT_URL": server.endpoint,
        "AWS_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
    }
    if prefix:
        env["PM_PREFIX"] = prefix
    return env


def _rclone_env(name: str, server: SeaweedS3) -> dict[str, str]:
    remote = f"RCLONE_CONFIG_{name.upper()}_"
    return {
        remote + "TYPE": "s3",
        remote + "PROVIDER": "Other",
        remote + "ENDPOINT": server.endpoint,
        remote + "ACCESS_KEY_ID": server.access_key,
        remote + "SECRET_ACCESS_KEY": server.secret_key,
        remote + "REGION": "us-east-1",
    }


def _fill_source(source: SeaweedS3, files: int, work: Path) -> int:
    """The generated tree, uploaded under the source prefix with the sync engine."""
    from s3w_storage.client import make_client
    from s3w_storage.objects import Storage
    from s3w_storage.settings import StorageSettings
    from s3w_storage.sync import sync

    media = work / "media"
    count, size = make_tree(media, files)
    settings = StorageSettings(
        bucket_name=SOURCE_BUCKET,
        prefix=SOURCE_PREFIX,
        aws_access_key_id=source.access_key,
        aws_secret_access_key=source.secret_key,
        aws_region_name="us-east-1",
        endpoint_url=source.endpoint,
    )
    storage = Storage(make_client(settings), settings)
    storage.client.create_bucket(Bucket=SOURCE_BUCKET)
    result = sync(storage, media)
    if not result.ok or result.uploaded != count:
        raise SystemExit(f"could not fill the source: {result.to_dict()}")
    shutil.rmtree(media)
    return size


def _run(argv: list[str], env: dict[str, str], *, ok_codes: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in ok_codes:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def _s3w_json(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"s3w migrate failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 files, one round")
    parser.add_argument("--files", type=int, help="tree size (default 20,000; 2,000 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    args = parser.parse_args()
    files = args.files or (2_000 if args.quick else 20_000)
    rounds = args.rounds or (1 if args.quick else 3)
    s3w = shutil.which("s3w", path=str(Path(sys.executable).parent)) or shutil.which("s3w")
    if s3w is None:
        raise SystemExit("s3w is not installed in this environment")
    rclone = shutil.which("rclone")
    notes: list[str] = []
    if rclone is None:
        notes.append("rclone skipped: not installed (Debian: `apt-get install rclone`)")

    work = Path(tempfile.mkdtemp(prefix="s3w-bench-migrate-"))
    token = uuid.uuid4().hex
    source = start_seaweedfs(access_key="bench-source", secret_key="src-" + token, base=work)
    target = start_seaweedfs(access_key="bench-target", secret_key="dst-" + token, base=work)
    times: dict[str, list[float]] = {
        "s3w copy": [],
        "rclone copy": [],
        "s3w verify": [],
        "rclone check": [],
    }
    try:
        started = time.perf_counter()
        size = _fill_source(source, files, work)
        print(
            f"source: {files} objects, {size / 2**20:.1f} MiB ({time.perf_counter() - started:.0f} s to fill)"
        )
        base = _clean_env()
        source_env = {**base, **_storage_env(source, SOURCE_BUCKET, SOURCE_PREFIX)}
        rclone_env = {**base, **_rclone_env("src", source), **_rclone_env("dst", target)}
        admin = _target_client(target)
        for number in range(1, rounds + 1):
            bucket = f"s3w-{number}-{uuid.uuid4().hex[:8]}"
            admin.create_bucket(Bucket=bucket)
            env_file = work / f"{bucket}.env"
            env_file.write_text(
                "".join(f"{k}={v}\n" for k, v in _storage_env(target, bucket).items())
            )
            argv = [s3w, "migrate", "--to-env", str(env_file), "--json"]
            if number == 1:  # warm-up, not timed: imports compiled, files cached
                _run([*argv, "--dry-run", "--verify"], source_env, ok_codes=(1,))

            def ours(argv: list[str] = argv) -> None:
                seconds, data = _s3w_json(argv, source_env)
                migrated = data["migrate"]
                if not isinstance(migrated, dict) or migrated["copied"] != files:
                    raise SystemExit(f"s3w migrate copied {migrated}")
                times["s3w copy"].append(seconds)
                seconds, data = _s3w_json([*argv, "--dry-run", "--verify"], source_env)
                verified = data["verify"]
                if not isinstance(verified, dict) or verified["matched"] != files:
                    raise SystemExit(f"s3w migrate --verify found {verified}")
                times["s3w verify"].append(seconds)

            def theirs(number: int = number) -> None:
                if rclone is None:
                    return
                other = f"rclone-{number}-{uuid.uuid4().hex[:8]}"
                admin.create_bucket(Bucket=other)
                src, dst = f"src:{SOURCE_BUCKET}/{SOURCE_PREFIX}", f"dst:{other}"
                times["rclone copy"].append(
                    _run([rclone, "copy", src, dst, *RCLONE_TUNING], rclone_env)
                )
                times["rclone check"].append(
                    _run([rclone, "check", src, dst, "--fast-list", "--checkers", "16"], rclone_env)
                )

            # Alternate which tool goes first, so that neither always meets a warmer server.
            for step in (ours, theirs) if number % 2 else (theirs, ours):
                step()
            print(
                f"round {number}: "
                + ", ".join(
                    f"{name} {values[-1]:.1f} s" for name, values in times.items() if values
                )
            )
    finally:
        source.stop()
        target.stop()
        shutil.rmtree(work, ignore_errors=True)

    table = _table(times)
    print()
    print(table)
    for note in notes:
        print(note)
    if not args.quick and args.files is None:
        _write_doc(table, times, files, size, rounds, notes)


def _target_client(server: SeaweedS3):  # type: ignore[no-untyped-def]
    return server.admin_client()


def _table(times: dict[str, list[float]]) -> str:
    medians = {name: statistics.median(values) for name, values in times.items() if values}
    lines = ["| step | s3w (s) | rclone (s) | s3w / rclone |", "|---|---:|---:|---:|"]
    for step, ours, theirs in (
        ("copy", "s3w copy", "rclone copy"),
        ("verify", "s3w verify", "rclone check"),
    ):
        if ours not in medians:
            continue
        other = medians.get(theirs)
        ratio = f"{medians[ours] / other:.2f}" if other else "-"
        lines.append(
            f"| {step} | {medians[ours]:.1f} | {other:.1f} | {ratio} |"
            if other
            else f"| {step} | {medians[ours]:.1f} | - | - |"
        )
    return "\n".join(lines)


def _write_doc(
    table: str,
    times: dict[str, list[float]],
    files: int,
    size: int,
    rounds: int,
    notes: list[str],
) -> None:
    import s3w_storage

    rclone = shutil.which("rclone")
    version = (
        subprocess.run([rclone, "version"], capture_output=True, text=True, check=False)
        .stdout.split("\n")[0]
        .strip()
        if rclone
        else "not installed"
    )
    per_round = "\n".join(
        f"- {name}: " + ", ".join(f"{value:.1f}" for value in values) + " s"
        for name, values in times.items()
        if values
    )
    load = os.getloadavg()[0]

    text = f"""# Benchmark: `s3w migrate` vs rclone

Written by `python benchmarks/bench_migrate.py` (also `nox -s bench`; `--quick` for a small run).

Two SeaweedFS servers on one machine ({os.cpu_count()} CPUs, {platform.system()}), different
credentials; the source holds the generated Papermerge-shaped tree (benchmarks/_tree.py:
{files:,} objects, {size / 2**20:.1f} MiB, 0.5-12 KiB each) under the prefix `pm/`; each tool
copies it into a fresh bucket on the second server. Medians of {rounds} rounds (the tool that
goes first alternates), s3w-storage {s3w_storage.__version__}, {version}; load average
{load:.1f} when it ended (the machine was shared).

{table}

Each round:

{per_round}

- copy: `s3w migrate --to-env target.env` vs `rclone copy src:papermerge/pm dst:bucket
  {" ".join(RCLONE_TUNING)}`.
- verify: `s3w migrate --to-env target.env --dry-run --verify` (both sides listed once; count,
  size and MD5 of every object) vs `rclone check src:papermerge/pm dst:bucket --fast-list
  --checkers 16` (size and MD5 of every object).
- Ratios below 1.0 mean s3w took less time. Both servers share the machine with the tools,
  so the figures measure the whole system, not the network.
"""
    if notes:
        text += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    (DOCS / "bench-migrate.md").write_text(text)
    print(f"wrote {DOCS / 'bench-migrate.md'}")


if __name__ == "__main__":
    main()

"""Distributed sync (``s3w sync --distributed``) with 1, 2 and 4 worker processes, side by
side with a local ``s3w sync`` and ``s5cmd sync``, on one throwaway SeaweedFS and Redis.

Each configuration syncs the same Papermerge-shaped tree (benchmarks/_tree.py) into a fresh
bucket, first straight to the server, then through a loopback proxy that adds 20 ms to
every request (a remote store). Prints files/s per configuration and the ratios to the
local ``s3w sync`` and to s5cmd measured in the same run. Worker start-up is not timed; the
coordinator's whole run (layout, sending, waiting for the last shard) is.

    python benchmarks/bench_scaleout.py            # 20,000 files; 1, 2, 4 workers
    python benchmarks/bench_scaleout.py --quick    # 2,000 files; 1, 2 workers
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._tree import make_tree  # noqa: E402
from tests.support.distributed import start_workers, stop_workers  # noqa: E402
from tests.support.services import start_redis  # noqa: E402

from s3w_storage.embedded import find_binary, start_seaweedfs  # noqa: E402


@contextmanager
def latency_proxy(upstream_port: int, delay_ms: float) -> Iterator[int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "_latency_proxy.py"),
            str(upstream_port),
            str(delay_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("listening "):
            raise RuntimeError(f"latency proxy did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def settings_env(
    endpoint: str, server: object, bucket: str, media: Path, redis_url: str, queue: str
) -> dict[str, str]:
    return {
        "STORAGE_BACKEND": "aws",
        "AWS_ACCESS_KEY_ID": server.access_key,  # type: ignore[attr-defined]
        "AWS_SECRET_ACCESS_KEY": server.secret_key,  # type: ignore[attr-defined]
        "AWS_REGION_NAME": "us-east-1",
        "PM_S3_ENDPOINT_URL": endpoint,
        "PM_S3_BUCKET_NAME": bucket,
        "PM_MEDIA_ROOT": str(media),
        "PM_REDIS_URL": redis_url,
        "PM_S3_QUEUE_NAME": queue,
        "PM_S3_PREVIEW_QUEUE_NAME": queue + "-preview",
        # Shards are signed fleet tasks, here on the queue the workers consume.
        "S3W_FLEET_KEY": "bench-fleet-key-" + "0" * 32,
        "S3W_FLEET_QUEUE_NAME": queue,
        "PM_LOG_CONFIG": str(media.parent / "no-log-config.yaml"),
    }


def use_env(env: dict[str, str]) -> None:
    """Make this process (the coordinator) use ``env``, as a fresh ``s3w`` would."""
    for name in [n for n in os.environ if n.startswith(("PM_", "AWS_", "S3W_"))]:
        del os.environ[name]
    os.environ.update(env)
    from s3w_storage.client import get_client
    from s3w_storage.objects import get_storage
    from s3w_storage.settings import get_settings
    from s3w_tasks.settings import get_settings as task_settings

    for cached in (get_settings, get_client, get_storage, task_settings):
        cached.cache_clear()  # type: ignore[attr-defined]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_local(env: dict[str, str], media: Path) -> float:
    s3w = shutil.which("s3w", path=str(Path(sys.executable).parent)) or "s3w"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AWS_", "S3W_"))}
    full.update(env)
    out = subprocess.run(
        [s3w, "sync", str(media), "--json", "--no-progress"],
        env=full,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"s3w sync failed: {out.stderr[-2000:]}")
    return float(json.loads(out.stdout)["seconds"])


def run_s5cmd(env: dict[str, str], media: Path, bucket: str) -> float:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full.update(
        AWS_ACCESS_KEY_ID=env["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=env["AWS_SECRET_ACCESS_KEY"],
        AWS_REGION="us-east-1",
    )
    argv = [
        find_binary("s5cmd"),
        "--endpoint-url",
        env["PM_S3_ENDPOINT_URL"],
        "sync",
        f"{media}/",
        f"s3://{bucket}/",
    ]
    return timed(lambda: subprocess.run(argv, env=full, check=True, stdout=subprocess.DEVNULL))


def run_distributed(env: dict[str, str], workers: int, logs: Path) -> float:
    from s3w_tasks.fleet.distributed import distributed_sync

    started = start_workers(env, workers, log_dir=logs)
    try:
        use_env(env)
        result = distributed_sync()
        if not result.ok:
            raise RuntimeError(f"distributed sync failed: {result.failures[:3]}")
        return result.seconds
    finally:
        stop_workers(started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 files, 1 and 2 workers")
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--workers", default=None, help="comma-separated worker counts")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    files = args.files or (2000 if args.quick else 20_000)
    counts = [int(n) for n in (args.workers or ("1,2" if args.quick else "1,2,4")).split(",")]

    work = Path(tempfile.mkdtemp(prefix="s3w-bench-scaleout-"))
    server = start_seaweedfs(access_key="bench", secret_key="bench-secret")
    redis = start_redis()
    try:
        media = work / "media"
        made, size = make_tree(media, files)
        print(f"tree: {made} files, {size / 2**20:.1f} MiB; cpus: {os.cpu_count()}", flush=True)
        admin = server.admin_client()
        rows: list[tuple[str, str, float]] = []
        for delay in (0.0, args.latency_ms):
            proxy = latency_proxy(int(server.endpoint.rsplit(":", 1)[1]), delay) if delay else None
            with proxy if proxy is not None else _nothing() as port:
                endpoint = f"http://127.0.0.1:{port}" if port else server.endpoint
                label = f"{delay:.0f} ms" if delay else "direct"

                def fresh(name: str, endpoint: str = endpoint) -> dict[str, str]:
                    bucket = f"{name}-{uuid.uuid4().hex[:10]}"
                    admin.create_bucket(Bucket=bucket)
                    return settings_env(
                        endpoint,
                        server,
                        bucket,
                        media,
                        redis.url + "/0",
                        f"bench-{uuid.uuid4().hex[:8]}",
                    )

                env = fresh("local")
                rows.append((label, "s3w sync (local)", run_local(env, media)))
                print(rows[-1], flush=True)
                env = fresh("s5cmd")
                rows.append((label, "s5cmd sync", run_s5cmd(env, media, env["PM_S3_BUCKET_NAME"])))
                print(rows[-1], flush=True)
                for n in counts:
                    env = fresh(f"dist{n}")
                    rows.append(
                        (
                            label,
                            f"--distributed, {n} worker(s)",
                            run_distributed(env, n, work / "logs"),
                        )
                    )
                    print(rows[-1], flush=True)
        _report(rows, files)
    finally:
        redis.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def _nothing() -> Iterator[int]:
    yield 0


def _report(rows: list[tuple[str, str, float]], files: int) -> None:
    print(
        f"\n{'store':<8} {'how':<28} {'seconds':>8} {'files/s':>9} {'vs local':>9} {'vs s5cmd':>9}"
    )
    for label in dict.fromkeys(r[0] for r in rows):
        mine = {how: secs for lab, how, secs in rows if lab == label}
        local, s5 = mine["s3w sync (local)"], mine["s5cmd sync"]
        for how, secs in mine.items():
            print(
                f"{label:<8} {how:<28} {secs:>8.2f} {files / secs:>9.0f} "
                f"{local / secs:>8.2f}x {s5 / secs:>8.2f}x"
            )


if __name__ == "__main__":
    main()

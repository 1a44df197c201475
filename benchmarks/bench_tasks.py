"""The worker's ``s3_worker_add_doc_vers`` throughput side by side with a plain boto3 loop.

On one throwaway SeaweedFS, in the same run, the same files (~200 KB each):

* **boto3 loop**: ``put_object`` for each file, one after another, one client;
* **worker**: one ``celery worker`` (default prefork pool: one process per CPU) consuming
  one ``s3_worker_add_doc_vers`` task per version, sent the way Papermerge core sends them.
  Each task also reads its version row and resets the document's preview status, as in
  production; the clock runs from the first send to the last task's outcome line.

Reports tasks/s for both, the ratio, and the worker's peak RSS (main process plus pool).
PostgreSQL and Redis come from ``S3W_TEST_DB_URL``/``S3W_TEST_REDIS_URL`` when set, else
throwaway servers are started.

Then the metrics overhead: the worker again with ``S3W_METRICS_PORT`` set, alternating with
metrics off, and the time each took (the full run writes the figures into
docs/observability.md; a scrape after each metrics run must count every task).

    python benchmarks/bench_tasks.py            # 1,000 versions, 4 rounds of metrics off/on
    python benchmarks/bench_tasks.py --quick    # 100 versions, 1 round
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import papermerge as pm  # noqa: E402
from tests.support.celery_worker import Worker, start_worker  # noqa: E402
from tests.support.services import start_postgres, start_redis, start_seaweedfs  # noqa: E402

KB = 1024


def _database(server_url: str) -> str:
    import psycopg2
    from psycopg2 import sql

    name = f"s3w_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    pm.create_schema(url)
    return url


def _drop_database(server_url: str, url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    name = url.rsplit("/", 1)[-1].split("?")[0]
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def _peak_rss(worker: Worker, peak: dict[str, int]) -> None:
    import psutil

    try:
        main = psutil.Process(worker.proc.pid)
        procs = [main, *main.children(recursive=True)]
        total = 0
        for proc in procs:
            rss = proc.memory_info().rss
            total += rss
            peak["process"] = max(peak.get("process", 0), rss)
        peak["total"] = max(peak.get("total", 0), total)
    except psutil.NoSuchProcess:
        pass


#: Run in a fresh interpreter (the multiprocess folder must be set before prometheus_client
#: counts): what the worker's metrics add to one task, in microseconds of CPU. A task here
#: is what one s3_worker_add_doc_vers costs them: its pre/post-run signals, one outcome and
#: one S3 request with its bytes.
_MICRO = """
import os, sys, tempfile, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="s3w-bench-metrics-")
from s3w_tasks import metrics
from s3w_tasks.celery_app import app
metrics.enable()
app.loader.import_default_modules()  # the tasks, as a worker registers them (include)
task = app.tasks["s3_worker_add_doc_vers"]
def one(i):
    metrics._prerun(task_id=str(i))
    metrics.count_request("PutObject", 200, 204800, 0)
    metrics._success(sender=task)
    metrics._postrun(task_id=str(i), sender=task)
for i in range(2000):
    one(i)
n = 20000
started = time.process_time()
for i in range(n):
    one(i)
print((time.process_time() - started) / n * 1e6)
"""


def instrumentation_us() -> float:
    """CPU microseconds the metrics add to one task (median of three measurements)."""
    import statistics
    import subprocess

    found = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _MICRO], capture_output=True, text=True, check=True, timeout=120
        )
        found.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(found)


def _scrape_ok(port: int, task: str) -> float:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "s3w_task_runs_total" and sample.labels == {
                "task": task,
                "outcome": "ok",
            }:
                return float(sample.value)
    return 0.0


def _worker_run(
    base_env: dict[str, str],
    versions: list[Any],
    client: Any,
    bucket: str,
    concurrency: int,
    metrics: bool,
    peak: dict[str, int],
) -> tuple[float, int, int]:
    """One worker (under a new PM_PREFIX, so every file is uploaded again) runs one
    ``s3_worker_add_doc_vers`` per version; returns (seconds, failed tasks, objects checked).
    With ``metrics``, the worker serves them and a scrape must count every task."""
    from tests.support.services import free_ports

    prefix = f"b{uuid.uuid4().hex[:8]}"
    env = {**base_env, "PM_PREFIX": prefix}
    port = free_ports(1)[0]
    if metrics:
        env["S3W_METRICS_PORT"] = str(port)
    worker = start_worker(env, app="s3worker.celery_app", concurrency=concurrency)
    sender = pm.core_app(base_env["PM_REDIS_URL"])
    try:
        _peak_rss(worker, peak)
        started = time.perf_counter()
        task_ids = [
            str(
                sender.send_task(
                    "s3_worker_add_doc_vers",
                    kwargs={"doc_ver_ids": [str(v.id)]},
                    queue=f"{prefix}_s3",
                ).id
            )
            for v in versions
        ]
        wanted = set(task_ids)
        while True:
            _peak_rss(worker, peak)
            outcomes = worker.outcomes()
            if wanted <= set(outcomes):
                break
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"worker unfinished after 600 s:\n{worker.tail()}")
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        failed = sum(1 for t in task_ids if outcomes[t] != "ok")
        if metrics:
            deadline = time.monotonic() + 30
            counted = _scrape_ok(port, "s3_worker_add_doc_vers")
            while counted < len(versions) and time.monotonic() < deadline:
                time.sleep(0.2)
                counted = _scrape_ok(port, "s3_worker_add_doc_vers")
            if counted != len(versions) - failed:
                raise AssertionError(
                    f"metrics counted {counted} ok tasks, the log {len(versions) - failed}"
                )
    finally:
        sender.close()
        worker.stop()
    checked = sum(
        1
        for v in versions[:: max(1, len(versions) // 50)]
        if client.head_object(Bucket=bucket, Key=pm.docver_key(v.id, v.file_name, prefix))
    )
    return seconds, failed, checked


def run(count: int, size: int, concurrency: int, rounds: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="s3w-bench-tasks-"))
    cleanups: list[Any] = []
    try:
        weed = start_seaweedfs(
            access_key="bench", secret_key="bench-" + uuid.uuid4().hex, base=base
        )
        cleanups.append(weed.stop)
        pg_server = os.environ.get("S3W_TEST_DB_URL")
        if not pg_server:
            server = start_postgres()
            cleanups.append(server.stop)
            pg_server = server.url
        db_url = _database(pg_server)
        cleanups.append(lambda: _drop_database(pg_server, db_url))
        redis_server = os.environ.get("S3W_TEST_REDIS_URL")
        if not redis_server:
            redis = start_redis()
            cleanups.append(redis.stop)
            redis_server = redis.url
        broker = f"{redis_server.rstrip('/')}/11"

        from tests.conftest import S3Service

        s3 = S3Service(weed.endpoint, weed.access_key, weed.secret_key)
        client = s3.client()
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        media = base / "media"
        user = pm.insert_user(db_url)
        versions = []
        for i in range(count):
            doc = pm.insert_document(db_url, user, file_name=f"file{i}.pdf", page_count=0)
            payload = os.urandom(size // 2) + bytes([i % 256]) * (size - size // 2)
            pm.media_file(media, doc.version, payload)
            versions.append(doc.version)

        # 1. The plain boto3 loop.
        started = time.perf_counter()
        for version in versions:
            key = pm.docver_key(version.id, version.file_name, "loop")
            with open(media / pm.docver_key(version.id, version.file_name), "rb") as body:
                client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/pdf")
        loop_seconds = time.perf_counter() - started

        # 2. One worker, then the same worker with metrics, alternately (`rounds` of each).
        base_env = {
            "STORAGE_BACKEND": "aws",
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "AWS_REGION_NAME": s3.region,
            "PM_S3_ENDPOINT_URL": s3.endpoint,
            "PM_S3_BUCKET_NAME": bucket,
            "PM_MEDIA_ROOT": str(media),
            "PM_DB_URL": db_url,
            "PM_REDIS_URL": broker,
            "PM_LOG_CONFIG": str(base / "none.yaml"),
        }
        runs: dict[bool, list[float]] = {False: [], True: []}
        load_before = os.getloadavg()[0]
        peak: dict[str, int] = {}
        failed = checked = 0
        for number in range(rounds):
            # Off-on, then on-off: neither mode always runs first (ABBA).
            for metrics in (False, True) if number % 2 == 0 else (True, False):
                seconds, bad, good = _worker_run(
                    base_env, versions, client, bucket, concurrency, metrics, peak
                )
                runs[metrics].append(seconds)
                failed += bad
                checked += good
        worker_seconds = runs[False][0]  # the first run: the worker vs loop figure
        off, on = sum(runs[False]), sum(runs[True])
        return {
            "count": count,
            "size_kb": size / KB,
            "loop_s": loop_seconds,
            "worker_s": worker_seconds,
            "loop_rate": count / loop_seconds,
            "worker_rate": count / worker_seconds,
            "ratio": worker_seconds / loop_seconds,
            "peak_rss_mb": peak.get("total", 0) / 2**20,
            "peak_process_mb": peak.get("process", 0) / 2**20,
            "concurrency": concurrency,
            "failed": failed,
            "checked": checked,
            "rounds": rounds,
            "off_runs": runs[False],
            "on_runs": runs[True],
            "off_rate": count * rounds / off,
            "on_rate": count * rounds / on,
            "overhead": on / off - 1,
            "load": (load_before, os.getloadavg()[0]),
            "micro_us": instrumentation_us(),
        }
    finally:
        for cleanup in reversed(cleanups):
            cleanup()
        shutil.rmtree(base, ignore_errors=True)


DOC = ROOT / "docs" / "observability.md"
BEGIN = "<!-- bench_tasks.py: metrics overhead (generated) -->"
END = "<!-- end of bench_tasks.py: metrics overhead -->"
#: The worker with metrics may be this much slower than without (the issue's bound).
OVERHEAD_BOUND = 0.05


def overhead_block(r: dict[str, Any], command: str) -> str:
    """The generated block of docs/observability.md."""
    lines = [
        BEGIN,
        "",
        f"Measured by `{command}`: {r['count']} `s3_worker_add_doc_vers` tasks of "
        f"{r['size_kb']:.0f} KB per run, one worker with {r['concurrency']} pool processes, "
        f"{r['rounds']} rounds of metrics off and on, alternately first (a new worker each "
        "run).",
        "",
        "| worker | runs (seconds) | tasks/s over all runs |",
        "|---|---|---:|",
        f"| metrics off | {', '.join(f'{x:.2f}' for x in r['off_runs'])} | {r['off_rate']:.1f} |",
        f"| metrics on (`S3W_METRICS_PORT`) | {', '.join(f'{x:.2f}' for x in r['on_runs'])} "
        f"| {r['on_rate']:.1f} |",
        "",
        f"With metrics the worker took {r['overhead'] * 100:+.1f}% time "
        f"(bound: +{OVERHEAD_BOUND * 100:.0f}%); the machine's load average was "
        f"{r['load'][0]:.1f} before and {r['load'][1]:.1f} after the runs (the spread between "
        "runs of one mode is the noise of that load).",
        "",
        f"What the metrics add to one task, measured alone: {r['micro_us']:.1f} µs of CPU "
        "(its pre/post-run signals, its outcome, one S3 request and its bytes), "
        f"{r['micro_us'] / (r['worker_s'] / r['count'] * 1e6) * 100:.2f}% of the "
        f"{r['worker_s'] / r['count'] * 1000:.1f} ms of wall time per task of the first "
        "metrics-off run.",
        "",
        END,
    ]
    return "\n".join(lines)


def write_doc(block: str) -> None:
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + block + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 versions instead of 1,000")
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--size-kb", type=int, default=200)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="pool processes (default: 2 per CPU)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="metrics off/on rounds (default 4, --quick 1)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/observability.md")
    args = parser.parse_args()
    count = args.count or (100 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 4)
    r = run(count, args.size_kb * KB, args.concurrency or 2 * (os.cpu_count() or 1), rounds)
    print(f"\ns3_worker_add_doc_vers: {r['count']} versions of {r['size_kb']:.0f} KB")
    print("| what | seconds | versions/s |")
    print("|---|---:|---:|")
    print(f"| plain boto3 put_object loop | {r['loop_s']:.2f} | {r['loop_rate']:.1f} |")
    print(
        f"| one worker (prefork, concurrency {r['concurrency']}) | {r['worker_s']:.2f} "
        f"| {r['worker_rate']:.1f} |"
    )
    print(f"\nworker time / loop time: {r['ratio']:.2f}x (goal: within 2x)")
    print(
        f"worker peak RSS: {r['peak_rss_mb']:.0f} MiB in all processes, "
        f"{r['peak_process_mb']:.0f} MiB the largest one"
    )
    command = "python benchmarks/bench_tasks.py " + " ".join(sys.argv[1:])
    block = overhead_block(r, command.strip())
    print("\n" + "\n".join(block.splitlines()[2:-2]))
    if r["failed"]:
        print(f"FAILED tasks: {r['failed']}")
        return 1
    if args.quick:  # a small run checks results only; its ratios are noise
        return 0
    if not args.no_docs:
        write_doc(block)
        print(f"wrote {DOC.relative_to(ROOT)}")
    if r["ratio"] > 2.0:
        return 2
    return 0 if r["overhead"] <= OVERHEAD_BOUND else 3


if __name__ == "__main__":
    sys.exit(main())

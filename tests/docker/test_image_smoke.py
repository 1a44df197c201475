"""The image's install, outside Docker: the installed s3w and worker against real servers.

`nox -s image-smoke` runs docker/build-wheels.sh and docker/install-wheels.sh (the scripts the
Dockerfile runs) and then this module with S3W_IMAGE_VENV pointing at the fresh environment.
Everything here runs programs from that environment in a clean process environment, from a
directory outside the repository, so nothing can come from the workspace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.support.services import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
VENV = os.environ.get("S3W_IMAGE_VENV", "")
WHEELS = os.environ.get("S3W_IMAGE_WHEELS", "")

pytestmark = pytest.mark.skipif(
    not VENV, reason="needs the environment that `nox -s image-smoke` installs"
)


def clean_env(**settings: str) -> dict[str, str]:
    """What a container would have: the venv first on PATH and the given settings."""
    return {
        "PATH": f"{VENV}/bin{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PM_LOG_CONFIG": str(DOCKER / "log_config.yaml"),
        **settings,
    }


def run(args: list[str], cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=clean_env(**settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def settings(
    storage_env: dict[str, str], pg_url: str, redis_server_url: str, media_root: Path
) -> dict[str, str]:
    """The worker's environment: the test S3 bucket, a fresh database with Papermerge's
    tables, Redis, a media root."""
    from tests.support import papermerge

    papermerge.create_schema(pg_url)
    return {
        **storage_env,
        "PM_DB_URL": pg_url,
        # A database number of its own and unique queue names: other runs share this Redis.
        "PM_REDIS_URL": f"{redis_server_url}/13",
        "PM_PREFIX": f"smoke{uuid.uuid4().hex[:12]}",
        "PM_MEDIA_ROOT": str(media_root),
    }


def test_the_four_packages_come_from_the_built_wheels(tmp_path: Path) -> None:
    wheels = sorted(p.name for p in Path(WHEELS).glob("s3w_*.whl"))
    assert wheels == [
        f"s3w_{name}-0.1.0-py3-none-any.whl" for name in ("cli", "storage", "tasks", "thumbs")
    ]
    code = (
        "import importlib.metadata as md, json\n"
        "out = {}\n"
        "for name in ('s3w-storage', 's3w-thumbs', 's3w-tasks', 's3w-cli'):\n"
        "    dist = md.distribution(name)\n"
        "    out[name] = [dist.version, str(dist.locate_file('')), dist.read_text('direct_url.json')]\n"
        "print(json.dumps(out))\n"
    )
    result = run([f"{VENV}/bin/python", "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    for name, (version, location, direct_url) in found.items():
        assert version == "0.1.0", (name, version)
        assert Path(location).resolve().is_relative_to(Path(VENV).resolve()), (name, location)
        # Installed from a wheel file, not an editable checkout of the workspace.
        assert direct_url is None or '"editable": true' not in direct_url, (name, direct_url)


def test_no_build_tools_in_the_environment(tmp_path: Path) -> None:
    for tool in ("pip", "setuptools", "wheel", "uv", "hatchling"):
        result = run([f"{VENV}/bin/python", "-c", f"import {tool}"], tmp_path)
        assert result.returncode != 0, f"{tool} is installed in the runtime environment"


def test_version(tmp_path: Path) -> None:
    result = run(["s3w", "--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "s3w 0.1.0"


def test_doctor_against_the_test_servers(tmp_path: Path, settings: dict[str, str]) -> None:
    result = run(["s3w", "doctor"], tmp_path, **settings)
    assert result.returncode == 0, f"s3w doctor failed:\n{result.stdout}\n{result.stderr}"
    output = result.stdout + result.stderr
    assert settings["AWS_SECRET_ACCESS_KEY"] not in output, "doctor printed the secret key"


@pytest.fixture
def worker_node() -> str:
    return f"smoke-{uuid.uuid4().hex[:8]}@{os.uname().nodename}"


@pytest.fixture
def worker(
    tmp_path: Path, settings: dict[str, str], worker_node: str
) -> Iterator[subprocess.Popen[str]]:
    """The worker, started the way the image starts it: `entrypoint.sh worker`."""
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        ["sh", str(DOCKER / "entrypoint.sh"), "worker", "--hostname", worker_node],
        cwd=tmp_path,
        env=clean_env(**settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    log.close()


def ping(tmp_path: Path, settings: dict[str, str], node: str) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command, addressed to this worker."""
    return run(
        ["sh", str(DOCKER / "healthcheck.sh")],
        tmp_path,
        S3W_WORKER_NODE=node,
        S3W_HEALTHCHECK_TIMEOUT="3",
        **settings,
    )


def test_worker_answers_the_healthcheck_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
    settings: dict[str, str],
    worker: subprocess.Popen[str],
    worker_node: str,
) -> None:
    log = tmp_path / "worker.log"

    def healthy() -> bool:
        if worker.poll() is not None:
            raise AssertionError(f"worker exited {worker.returncode}:\n{log.read_text()}")
        return ping(tmp_path, settings, worker_node).returncode == 0

    wait_until(healthy, timeout=120, what="the worker's reply to celery inspect ping", interval=0.5)
    started = log.read_text()
    prefix = settings["PM_PREFIX"]
    assert f"{prefix}_s3," in started, started
    assert f"{prefix}_s3preview" in started, started

    worker.send_signal(signal.SIGTERM)  # the entrypoint exec'd: this pid is Celery's
    returncode = worker.wait(timeout=120)

    output = log.read_text()
    assert returncode == 0, f"worker exited {returncode} after SIGTERM:\n{output}"
    assert "warm shutdown" in output.lower(), output
    assert settings["AWS_SECRET_ACCESS_KEY"] not in output, "the worker logged the secret key"
    # The health check now reports the truth: nobody answers.
    assert ping(tmp_path, settings, worker_node).returncode != 0

"""``s3w sync`` and ``s3w migrate`` push their summary to a real Prometheus Pushgateway
(Debian's ``prometheus-pushgateway``, which .ci/run installs) and print it with ``--json``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.services import free_ports, stop_process, wait_until

Run = Callable[..., Any]
REDIS_DB = 4  # shared with test_status; each test has its own PM_PREFIX


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        pytest.fail(
            "prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)"
        )
    port = free_ports(1)[0]
    log = tmp_path_factory.mktemp("pushgateway") / "pushgateway.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_until(ready, timeout=30, what="the Pushgateway", interval=0.2)
        yield url
    finally:
        stop_process(proc)


def gateway_samples(url: str, job: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if labels.pop("job", None) == job:
                labels.pop("instance", None)
                found[(sample.name, frozenset(labels.items()))] = sample.value
    return found


@pytest.fixture
def published(
    storage_env: dict[str, str],
    media_root: Path,
    redis_server_url: str,
    pushgateway: str,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The environment of a deployment that pushes to the gateway; returns its s3 queue."""
    prefix = f"pg{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PM_MEDIA_ROOT", str(media_root))
    monkeypatch.setenv("PM_PREFIX", prefix)
    monkeypatch.setenv("PM_REDIS_URL", f"{redis_server_url.rstrip('/')}/{REDIS_DB}")
    monkeypatch.setenv("S3W_PUSHGATEWAY_URL", pushgateway)
    return f"{prefix}_s3"


@pytest.mark.slow  # a Pushgateway process: full leg only
def test_sync_pushes_its_summary(
    s3w: Run, published: str, media_root: Path, pushgateway: str
) -> None:
    for i in range(3):
        path = media_root / "docvers" / "ab" / "cd" / f"v{i}" / f"f{i}.pdf"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"%PDF-1.4 " + bytes([i]) * (1000 + i))
    result = json.loads(s3w("sync", "--json", "--no-progress").stdout)
    assert (result["uploaded"], result["ok"]) == (3, True)

    found = gateway_samples(pushgateway, "s3w_sync")
    group = frozenset({("deployment", published)})

    def sample(name: str, **labels: str) -> float:
        return found[(name, group | frozenset(labels.items()))]

    assert sample("s3w_run_success") == 1
    assert sample("s3w_run_items", result="uploaded") == 3
    assert sample("s3w_run_items", result="failed") == 0
    assert sample("s3w_run_bytes", result="uploaded") == result["uploaded_bytes"] == 3003 + 27
    assert sample("s3w_run_duration_seconds") == pytest.approx(result["seconds"])
    assert sample("s3w_run_timestamp_seconds") > 1.7e9

    # Nothing new: the next push replaces the group's values.
    again = json.loads(s3w("sync", "--json", "--no-progress").stdout)
    assert again["uploaded"] == 0
    found = gateway_samples(pushgateway, "s3w_sync")
    assert sample("s3w_run_items", result="uploaded") == 0
    assert sample("s3w_run_items", result="unchanged") == 3


@pytest.mark.slow  # a Pushgateway process: full leg only
def test_migrate_pushes_its_summary(
    s3w: Run, published: str, media_root: Path, pushgateway: str, s3: Any, bucket: str
) -> None:
    prefix = published.removesuffix("_s3")  # PM_PREFIX: the storage prefix too
    s3.put_object(Bucket=bucket, Key=f"{prefix}/docvers/aa/bb/m/m.pdf", Body=b"%PDF-1.4 migrate")
    result = json.loads(s3w("migrate", "--to-prefix", "copy", "--json").stdout)
    assert result["migrate"]["copied"] == 1
    found = gateway_samples(pushgateway, "s3w_migrate")
    group = frozenset({("deployment", published)})
    assert found[("s3w_run_success", group)] == 1
    assert found[("s3w_run_items", group | {("result", "copied")})] == 1
    assert found[("s3w_run_bytes", group | {("result", "copied")})] == len(b"%PDF-1.4 migrate")


def test_an_unreachable_gateway_is_a_warning_not_a_failure(
    s3w: Run, published: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3w_tasks.settings import get_settings

    port = free_ports(1)[0]
    monkeypatch.setenv("S3W_PUSHGATEWAY_URL", f"http://pusher:hunter2pass@127.0.0.1:{port}")
    monkeypatch.setenv("S3W_TEST_DB_PASSWORD", "hunter2pass")  # checked absent from output
    get_settings.cache_clear()
    result = s3w("sync", "--json", "--no-progress")
    assert json.loads(result.stdout)["ok"] is True
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("warning: summary not pushed to S3W_PUSHGATEWAY_URL: ")
    assert "refused" in warnings[0].lower(), warnings


@pytest.mark.slow  # a Pushgateway process: full leg only
def test_restore_pushes_its_summary(
    s3w: Run, published: str, media_root: Path, pushgateway: str
) -> None:
    path = media_root / "docvers" / "ab" / "cd" / "r1" / "r.pdf"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"%PDF-1.4 restore me")
    assert json.loads(s3w("sync", "--json", "--no-progress").stdout)["uploaded"] == 1
    path.unlink()

    result = json.loads(s3w("restore", "--json", "--no-progress").stdout)
    assert path.read_bytes() == b"%PDF-1.4 restore me"
    found = gateway_samples(pushgateway, "s3w_restore")
    group = frozenset({("deployment", published)})
    assert found[("s3w_run_success", group)] == 1
    assert found[("s3w_run_items", group | {("result", "restored")})] == result["restored"] == 1
    assert found[("s3w_run_bytes", group | {("result", "restored")})] == len(b"%PDF-1.4 restore me")


def test_the_destinations_are_the_names_the_worker_settings_read() -> None:
    from s3w_tasks.settings import TaskSettings
    from s3w_tasks.summary import DESTINATIONS, has_destination

    fields = ("redis_url", "broker_url_override", "progress_redis_url", "pushgateway_url")
    names = {
        name
        for field in fields
        for name in TaskSettings.model_fields[field].validation_alias.choices  # type: ignore[union-attr]
    }
    assert names == set(DESTINATIONS)
    assert has_destination({"s3w_pushgateway_url": "http://x"})  # any case, as the settings
    assert not has_destination({"PM_S3_BUCKET_NAME": "papers"})


def test_a_sync_with_nowhere_to_publish_loads_neither_botocore_nor_sqlalchemy(
    storage_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path
) -> None:
    from s3w_tasks.summary import DESTINATIONS

    media = tmp_path / "media"
    for name in ("a", "b"):
        (media / "docvers" / name).mkdir(parents=True)
        (media / "docvers" / name / "v.pdf").write_bytes(b"%PDF-1.4 " + name.encode())
    code = (
        "import json, sys\n"
        "from s3w_cli.main import app\n"
        "try:\n"
        f"    app(['sync', {str(media)!r}, '--json', '--no-progress'], prog_name='s3w')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "heavy = [m for m in ('boto3', 'botocore', 'sqlalchemy', 'redis') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    env = {k: v for k, v in os.environ.items() if k.upper() not in DESTINATIONS}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.split("HEAVY")[0])
    assert (summary["uploaded"], summary["ok"]) == (2, True)
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr
    for name in ("a", "b"):  # the bytes reached the bucket without botocore in the process
        stored = s3.get_object(Bucket=bucket, Key=f"docvers/{name}/v.pdf")["Body"].read()
        assert stored == b"%PDF-1.4 " + name.encode()

"""Every ``s3w`` command against the real S3 server: output, exit codes, bucket contents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Run = Callable[..., Any]


def write(root: Path, key: str, data: bytes) -> Path:
    path = root.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def keys(s3: Any, bucket: str) -> set[str]:
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found |= {item["Key"] for item in page.get("Contents", [])}
    return found


def test_help_and_version_import_neither_boto3_celery_nor_sqlalchemy() -> None:
    code = (
        "import sys\n"
        "from s3w_cli.main import app\n"
        "for argv in (['--help'], ['--version'], ['sync', '--help']):\n"
        "    try:\n"
        "        app(argv, prog_name='s3w')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        "heavy = [m for m in ('boto3', 'botocore', 'celery', 'sqlalchemy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr
    assert "s3w 0.1.0" in done.stdout
    assert "Usage: s3w" in done.stdout


def test_version(s3w: Run) -> None:
    assert s3w("--version").stdout.strip() == "s3w 0.1.0"


@pytest.mark.usefixtures("storage_env")
def test_info_reports_the_setup_and_check_round_trips(s3w: Run, s3: Any, bucket: str) -> None:
    out = s3w("info").stdout
    assert f"bucket            {bucket}" in out
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment" in out
    assert "sha256 on every PUT and part (PM_S3_CHECKSUM=auto); downloads verified" in out
    assert "endpoint_source   PM_S3_ENDPOINT_URL" in out
    assert "s3, s3preview" in out

    checked = json.loads(s3w("info", "--check", "--json").stdout)
    assert checked["check"].startswith("ok: wrote, read back and deleted .s3w-check/")
    assert keys(s3, bucket) == set()  # the probe object is gone


def test_info_names_the_aws_endpoint_variable_that_won(
    s3w: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "papers")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://store.example.invalid:9000")
    result = s3w("info", code=0)
    assert "endpoint_source   AWS_ENDPOINT_URL" in result.stdout
    assert "AWS_ENDPOINT_URL uses plain http to store.example.invalid" in result.stdout
    refused = s3w("info", "--check", code=1)
    assert "AWS_ENDPOINT_URL uses plain http to store.example.invalid" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_missing_configuration_lists_every_variable_without_a_traceback(
    s3w: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "cloudflare")
    result = s3w("info", "--check", code=1)
    for name in ("PM_S3_BUCKET_NAME", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_ACCOUNT_ID"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_config_is_json_with_secrets_and_url_passwords_masked(
    s3w: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "media")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-xyz")
    monkeypatch.setenv("S3W_TEST_DB_PASSWORD", "db-pass-123")
    monkeypatch.setenv("PM_DB_URL", "postgresql://papermerge:db-pass-123@db:5432/pm")
    monkeypatch.setenv("PM_REDIS_URL", "redis://:db-pass-123@redis:6379/0")
    out = s3w("config").stdout
    assert "AKIDEXAMPLEKEY" not in out
    data = json.loads(out)
    assert data["storage"]["bucket_name"] == "media"
    assert data["storage"]["aws_secret_access_key"] == "********"
    assert data["storage"]["aws_access_key_id"] == "********"
    assert data["worker"]["db_url"] == "postgresql://papermerge:********@db:5432/pm"
    assert data["worker"]["redis_url"] == "redis://:********@redis:6379/0"
    assert data["worker"]["queues"] == ["s3", "s3preview"]


@pytest.mark.usefixtures("storage_env")
def test_upload_presign_delete(s3w: Run, s3: Any, bucket: str, tmp_path: Path) -> None:
    source = write(tmp_path, "doc.pdf", b"%PDF-1.4 upload me")
    key = "docvers/ab/cd/abcd1234/document.pdf"
    out = s3w("upload", str(source), key).stdout
    assert f"uploaded {source} to {key} in {bucket}" in out
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "application/pdf"

    url = s3w("presigned-url", key, "--expires", "120").stdout.strip()
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - test server
        assert response.read() == b"%PDF-1.4 upload me"

    out = s3w("delete", key, "docvers/never/was.pdf").stdout
    assert f"deleted 2 object(s) from {bucket}" in out
    assert keys(s3, bucket) == set()


@pytest.mark.usefixtures("storage_env")
def test_bad_input_is_one_line_and_exit_1(s3w: Run, bucket: str, tmp_path: Path) -> None:
    missing = s3w("presigned-url", "docvers/ab/cd/abcd1234/document.pdf", code=1)
    assert missing.stderr.strip() == (
        f"error: no object at docvers/ab/cd/abcd1234/document.pdf in {bucket}"
    )
    expiry = s3w("presigned-url", "x.pdf", "--expires", "604801", code=1)
    assert "outside 1..604800" in expiry.stderr
    assert len(expiry.stderr.strip().splitlines()) == 1
    nofile = s3w("upload", str(tmp_path / "nope.pdf"), "x.pdf", code=1)
    assert "is not a readable file" in nofile.stderr
    traversal = s3w("upload", str(write(tmp_path, "a.txt", b"a")), "../escape.txt", code=1)
    assert "'..'" in traversal.stderr
    for result in (missing, expiry, nofile, traversal):
        assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.usefixtures("storage_env")
def test_verbose_lets_the_traceback_through(s3w: Run) -> None:
    from s3w_storage.errors import ObjectNotFound

    result = s3w("--verbose", "presigned-url", "nothing/here.pdf", code=1)
    assert isinstance(result.exception, ObjectNotFound)


@pytest.mark.usefixtures("storage_env")
def test_sync_command_json_table_dry_run_and_delete(
    s3w: Run, s3: Any, bucket: str, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"ocr/pages/{n:02d}/page.txt": f"page {n}".encode() for n in range(12)}
    for key, data in files.items():
        write(media_root, key, data)
    s3.put_object(Bucket=bucket, Key="docvers/old/gone.pdf", Body=b"x")
    monkeypatch.setenv("PM_MEDIA_ROOT", str(media_root))

    plan = s3w("sync", "--dry-run", "--delete").stdout
    assert "upload ocr/pages/00/page.txt (new)" in plan
    assert "delete docvers/old/gone.pdf" in plan
    assert "would upload" in plan
    assert keys(s3, bucket) == {"docvers/old/gone.pdf"}

    first = json.loads(s3w("sync", "--json", "--progress").stdout)  # the bar on stderr
    assert (first["uploaded"], first["ok"], first["deleted"]) == (12, True, 0)
    assert keys(s3, bucket) == set(files) | {"docvers/old/gone.pdf"}

    table = s3w("sync", "--delete", str(media_root) + "/").stdout
    assert "unchanged" in table
    assert "12" in table
    assert keys(s3, bucket) == set(files)

    refused = s3w("sync", "--json", "--delete", "--max-delete", "0", code=0)
    assert json.loads(refused.stdout)["deleted"] == 0


@pytest.mark.usefixtures("storage_env")
def test_sync_failures_exit_1_and_missing_root_is_a_clear_error(
    s3w: Run, s3: Any, bucket: str, media_root: Path, tmp_path: Path
) -> None:
    write(media_root, "ocr/pages/aa/page.txt", b"fine")
    write(media_root, "ocr/pages/bad\\name.txt", b"a name S3 keys refuse")
    result = s3w("sync", str(media_root), code=1)
    assert "failed: ocr/pages/bad\\name.txt" in result.stderr
    assert keys(s3, bucket) == {"ocr/pages/aa/page.txt"}

    missing = s3w("sync", str(tmp_path / "nowhere"), code=1)
    assert (
        missing.stderr.strip()
        == f"error: media root {tmp_path / 'nowhere'} does not exist (set PM_MEDIA_ROOT)"
    )


def test_worker_runs_celery_on_the_papermerge_queues(
    s3w: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_PREFIX", "tenant")
    line = s3w("worker", "--print-command", "--concurrency", "2").stdout.split()
    assert line[1:] == [
        "-A",
        "s3w_tasks.celery_app",
        "worker",
        "-Q",
        "tenant_s3,tenant_s3preview",
        "--concurrency",
        "2",
    ]
    monkeypatch.setenv("PM_S3_PREVIEW_QUEUE_NAME", "previews-node-1")
    from s3w_tasks.settings import get_settings

    get_settings.cache_clear()  # settings are read once per process
    assert "tenant_s3,previews-node-1" in s3w("worker", "--print-command").stdout

    # Without --print-command the process becomes celery (here: celery's own help).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "s3w_cli", "worker", "--", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: celery worker" in done.stdout


def test_worker_fleet_adds_the_fleet_queue_and_needs_the_key(
    s3w: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3w_tasks.settings import get_settings

    monkeypatch.setenv("PM_PREFIX", "tenant")
    monkeypatch.delenv("S3W_FLEET_KEY", raising=False)
    get_settings.cache_clear()
    refused = s3w("worker", "--fleet", "--print-command", code=1)
    assert "S3W_FLEET_KEY is not set" in refused.stderr
    monkeypatch.setenv("S3W_FLEET_KEY", "f" * 40)
    get_settings.cache_clear()
    line = s3w("worker", "--fleet", "--print-command").stdout.split()
    assert line[line.index("-Q") + 1] == "tenant_s3,tenant_s3preview,tenant_s3fleet"
    assert "f" * 40 not in " ".join(line)
    get_settings.cache_clear()

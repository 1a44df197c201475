"""``s3w migrate`` between two real SeaweedFS servers: the summary, the switch, --dry-run,
--verify and --verify=db, errors, a killed run resumed, and secrets never printed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support import services
from tests.support.archive import assert_copied, fill_archive, listed
from typer.testing import CliRunner

from s3w_cli.main import app
from s3w_storage.keys import docver_key, thumbnail_key

SOURCE_PREFIX = "pm"


@pytest.fixture
def target_bucket(other_server: services.SeaweedS3) -> Iterator[tuple[str, Any]]:
    client = services_client(other_server)
    name = f"t-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=name)
    yield name, client
    for key in listed(client, name):
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)


def services_client(server: services.SeaweedS3) -> Any:
    return server.admin_client(s3={"addressing_style": "path"})


@pytest.fixture
def source_env(storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The current settings: the session server, the test's bucket, prefix ``pm``."""
    monkeypatch.setenv("PM_PREFIX", SOURCE_PREFIX)
    return {**storage_env, "PM_PREFIX": SOURCE_PREFIX}


@pytest.fixture
def target_env(
    tmp_path: Path, other_server: services.SeaweedS3, target_bucket: tuple[str, Any]
) -> Path:
    path = tmp_path / "target.env"
    path.write_text(
        "# the new provider\n"
        "STORAGE_BACKEND=aws\n"
        f"PM_S3_BUCKET_NAME={target_bucket[0]}\n"
        f"PM_S3_ENDPOINT_URL={other_server.endpoint}\n"
        "AWS_REGION_NAME=us-east-1\n"
        f"AWS_ACCESS_KEY_ID={other_server.access_key}\n"
        f'AWS_SECRET_ACCESS_KEY="{other_server.secret_key}"\n'
    )
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["migrate", *args])


def assert_no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, "a secret was printed"


def test_migrate_verify_and_the_switch(
    source_env: dict[str, str],
    target_env: Path,
    target_bucket: tuple[str, Any],
    other_server: services.SeaweedS3,
    s3: Any,
    bucket: str,
) -> None:
    objects = fill_archive(s3, bucket, SOURCE_PREFIX)
    result = run("--to-env", str(target_env), "--verify", "--progress")
    output = result.output + result.stderr
    assert result.exit_code == 0, output
    (copied,) = [line for line in result.stdout.splitlines() if " copied " in line]
    assert f" {len(objects)} (" in copied
    assert "verify: OK" in result.stdout
    assert "Safe to switch" in result.stdout
    lines = result.stdout.splitlines()
    assert f"  PM_S3_BUCKET_NAME={target_bucket[0]}" in lines
    assert f"  PM_S3_ENDPOINT_URL={other_server.endpoint}" in lines
    assert "  unset PM_PREFIX" in lines
    assert f"  AWS_SECRET_ACCESS_KEY=********  # the value in {target_env}" in lines
    assert f"  AWS_ACCESS_KEY_ID={other_server.access_key[:4]}********" in lines
    assert any(
        line.startswith("and copy what arrived meanwhile") and f"--to-env {target_env}" in line
        for line in lines
    )
    assert_no_secrets(output, source_env["AWS_SECRET_ACCESS_KEY"], other_server.secret_key)
    assert_copied(target_bucket[1], target_bucket[0], "", objects)

    again = run("--to-env", str(target_env), "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert (data["migrate"]["copied"], data["migrate"]["unchanged"]) == (0, len(objects))
    assert "unset PM_PREFIX" in data["switch"]
    assert_no_secrets(
        again.output + again.stderr,
        source_env["AWS_SECRET_ACCESS_KEY"],
        other_server.secret_key,
    )


def test_dry_run_prints_the_plan_and_bytes(
    source_env: dict[str, str],
    target_env: Path,
    target_bucket: tuple[str, Any],
    s3: Any,
    bucket: str,
) -> None:
    objects = fill_archive(s3, bucket, SOURCE_PREFIX, documents=2)
    result = run("--to-env", str(target_env), "--dry-run")
    assert result.exit_code == 0, result.output
    planned = [line for line in result.stdout.splitlines() if line.startswith("copy ")]
    assert sorted(planned) == sorted(
        f"copy {key} (new, {_size(len(item.data))})" for key, item in objects.items()
    )
    total = sum(len(o.data) for o in objects.values())
    assert f"{len(objects)} ({_size(total)})" in result.stdout
    assert "Nothing was copied (--dry-run)." in result.stdout
    assert listed(target_bucket[1], target_bucket[0]) == {}


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KB"


def test_verify_finds_a_deleted_and_a_corrupted_object(
    source_env: dict[str, str],
    target_env: Path,
    target_bucket: tuple[str, Any],
    s3: Any,
    bucket: str,
) -> None:
    objects = fill_archive(s3, bucket, SOURCE_PREFIX)
    assert run("--to-env", str(target_env)).exit_code == 0
    name, client = target_bucket
    deleted, corrupted = sorted(k for k in objects if k.startswith("docvers/"))[:2]
    client.delete_object(Bucket=name, Key=deleted)
    data = bytearray(objects[corrupted].data)
    data[-1] ^= 0x01
    client.put_object(Bucket=name, Key=corrupted, Body=bytes(data))

    result = run("--to-env", str(target_env), "--dry-run", "--verify")

    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert "verify: DIFFERENCES" in result.stdout
    assert lines[lines.index("missing on the target: 1") + 1] == f"  {deleted}"
    assert lines[lines.index("different: 1") + 1] == f"  {corrupted} (checksum)"
    assert "Not safe to switch" in result.stdout

    repaired = run("--to-env", str(target_env), "--verify", "--progress")
    assert repaired.exit_code == 0, repaired.output
    assert "copied" in repaired.stdout


def test_verify_db_checks_what_the_database_names(
    source_env: dict[str, str],
    target_env: Path,
    target_bucket: tuple[str, Any],
    s3: Any,
    bucket: str,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pm.create_schema(pg_url)
    user = pm.insert_user(pg_url)
    ready = pm.insert_document(pg_url, user, file_name="ready.pdf", preview_status="ready")
    fresh = pm.insert_document(pg_url, user, file_name="fresh.pdf", page_count=2)
    keys = [
        pm.docver_key(ready.version.id, "ready.pdf"),
        pm.docver_key(fresh.version.id, "fresh.pdf"),
        pm.thumbnail_key(ready.id),
        pm.page_preview_key(ready.version.page_ids[0], "md"),
        pm.page_preview_key(fresh.version.page_ids[1], "sm"),
    ]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=f"{SOURCE_PREFIX}/{key}", Body=b"x" * 10)
    monkeypatch.setenv("PM_DB_URL", pg_url)

    result = run("--to-env", str(target_env), "--verify=db")
    assert result.exit_code == 0, result.output + result.stderr
    assert "verify: 5 keys named by the database checked" in result.stdout

    name, client = target_bucket
    client.delete_object(Bucket=name, Key=pm.thumbnail_key(ready.id))
    pm.execute(
        pg_url, "UPDATE documents SET preview_status = 'ready' WHERE node_id = %s", [str(fresh.id)]
    )
    missing = run("--to-env", str(target_env), "--dry-run", "--verify=db")
    assert missing.exit_code == 1
    lines = missing.stdout.splitlines()
    at = lines.index("named by the database, missing on the target: 1")
    assert lines[at + 1] == f"  {pm.thumbnail_key(ready.id)}"
    at = lines.index("named by the database, on neither side (not a migration problem): 1")
    assert lines[at + 1] == f"  {pm.thumbnail_key(fresh.id)}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give the target"),
        (("--to-env", "/nonexistent/target.env"), "cannot read the target env file"),
        (("--to-prefix", "pm/inside"), "overlaps the source"),
        (("--to-bucket", "Not_A_Bucket"), "is not a valid bucket name"),
        (("--to-env", "{env}", "--verify=everything"), "--verify=db"),
    ],
)
def test_errors_are_one_line(
    source_env: dict[str, str], target_env: Path, args: tuple[str, ...], message: str
) -> None:
    result = run(*(a.format(env=target_env) for a in args))
    assert result.exit_code in (1, 2), result.output
    assert message in " ".join((result.stderr or result.output).split())
    assert "Traceback" not in result.output + result.stderr
    if result.exit_code == 1:
        assert result.stderr.startswith("error: ")
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_target_without_object_lock_is_refused_in_one_line(
    source_env: dict[str, str],
    target_env: Path,
    target_bucket: tuple[str, Any],
    s3_service: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A document version still retained at the source and a target bucket without object
    lock: one line saying what to do, exit 1, and nothing copied."""
    client = s3_service.client()
    locked = f"l-{uuid.uuid4().hex[:20]}"  # its locked version outlives the test, as it must
    client.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    monkeypatch.setenv("PM_S3_BUCKET_NAME", locked)
    version = uuid.uuid4()
    client.put_object(
        Bucket=locked,
        Key=f"{SOURCE_PREFIX}/{docver_key(version, 'a.pdf')}",
        Body=b"%PDF",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(hours=1),
    )
    client.put_object(Bucket=locked, Key=f"{SOURCE_PREFIX}/{thumbnail_key(version)}", Body=b"j")
    result = run("--to-env", str(target_env))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert f"bucket {target_bucket[0]} has no object lock, but docvers/" in lines[0]
    assert "nothing was copied; create the target bucket with object lock" in lines[0]
    assert listed(target_bucket[1], target_bucket[0]) == {}


def test_a_killed_run_is_resumed(
    tmp_path: Path,
    source_env: dict[str, str],
    target_env: Path,
    target_bucket: tuple[str, Any],
    other_server: services.SeaweedS3,
    s3: Any,
    bucket: str,
) -> None:
    count = 800
    ids = [str(uuid.uuid4()) for _ in range(count)]
    keys = [f"thumbnails/jpg/{i[0:2]}/{i[2:4]}/{i}/sm.jpg" for i in ids]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda k: s3.put_object(
                    Bucket=bucket, Key=f"{SOURCE_PREFIX}/{k}", Body=os.urandom(300)
                ),
                keys,
            )
        )
    name, client = target_bucket
    log = tmp_path / "killed.log"
    command = [str(Path(sys.executable).with_name("s3w")), "migrate", "--to-env", str(target_env)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "-j", "2"], env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        services.wait_until(
            lambda: len(listed(client, name)) >= 50 or proc.poll() is not None,
            timeout=120,
            what="the first 50 copies",
        )
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    copied_before = len(listed(client, name))
    assert 50 <= copied_before < count

    result = run("--to-env", str(target_env), "--verify", "--json")
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(result.stdout)
    assert data["migrate"]["copied"] == count - data["migrate"]["unchanged"]
    # Every object the target listed was whole (a PUT is atomic): none is copied again.
    assert data["migrate"]["unchanged"] >= copied_before
    assert data["verify"]["ok"] is True
    assert data["verify"]["matched"] == count
    assert_no_secrets(
        result.output + result.stderr + log.read_text(errors="replace"),
        source_env["AWS_SECRET_ACCESS_KEY"],
        other_server.secret_key,
    )

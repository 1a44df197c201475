"""``s3w restore`` against a real SeaweedFS: a media root synced, deleted and brought back
byte for byte with its modification times; a killed restore resumed; a damaged object
caught with --checksum; newer local files kept; bad destinations refused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support import services

PREFIX = "pm"
MiB = 2**20


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (MD5, mtime in ns)} of every file under ``root``."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file():
            found[path.relative_to(root).as_posix()] = (_md5(path), path.stat().st_mtime_ns)
    return found


def _fill(root: Path, count: int, *, large: int = 0) -> None:
    """Papermerge-shaped files with old, fractional modification times."""
    for number in range(count):
        ident = str(uuid.uuid4())
        shard = f"{ident[:2]}/{ident[2:4]}/{ident}"
        name = "Rechnung März.pdf" if number == 0 else f"scan {number}.pdf"
        files = {
            f"docvers/{shard}/{name}": b"%PDF-1.7\n" + os.urandom(2000 + number),
            f"thumbnails/jpg/{shard}/sm.jpg": b"\xff\xd8" + os.urandom(300),
            f"ocr/pages/{shard}/page.txt": f"text {number}".encode(),
        }
        for index in range(large if number == 0 else 0):
            files[f"docvers/{shard}/big {index}.pdf"] = os.urandom(12 * MiB + 7)
        for key, data in files.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            stamp = 1_600_000_000.123456 + number * 1000
            os.utime(path, (stamp, stamp))


@pytest.fixture
def env(storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PM_PREFIX", PREFIX)
    # Small parts so that a 12 MiB file is a multipart object fetched in ranges.
    monkeypatch.setenv("PM_S3_MULTIPART_THRESHOLD", str(5 * MiB))
    monkeypatch.setenv("PM_S3_MULTIPART_CHUNKSIZE", str(5 * MiB))
    from tests.conftest import clear_caches

    clear_caches()
    return {**storage_env, "PM_PREFIX": PREFIX}


def _restore(s3w: Callable[..., Any], *args: str, code: int = 0) -> dict[str, Any]:
    result = s3w("restore", *args, "--json", "--no-progress", code=code)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_a_lost_media_root_comes_back_byte_identical_with_its_mtimes(
    env: dict[str, str], media_root: Path, s3w: Callable[..., Any]
) -> None:
    _fill(media_root, 12, large=1)
    before = _snapshot(media_root)
    s3w("sync", str(media_root), "--json", "--no-progress")
    shutil.rmtree(media_root)

    data = _restore(s3w, str(media_root))

    assert data["ok"] is True
    assert data["restored"] == len(before) == data["objects"]
    assert _snapshot(media_root) == before
    # A second run finds nothing to do.
    again = _restore(s3w, str(media_root))
    assert (again["restored"], again["unchanged"]) == (0, len(before))


def test_a_dry_run_lists_and_writes_nothing(
    env: dict[str, str], media_root: Path, tmp_path: Path, s3w: Callable[..., Any]
) -> None:
    _fill(media_root, 3)
    s3w("sync", str(media_root), "--json", "--no-progress")
    dest = tmp_path / "empty"
    result = s3w("restore", str(dest), "--dry-run", "--include", "docvers/*", "--no-progress")
    lines = [line for line in result.stdout.splitlines() if line.startswith("restore ")]
    assert len(lines) == 3
    assert all(line.endswith("(new)") for line in lines)
    assert not dest.exists()  # not even the folder is created


def test_a_killed_restore_is_resumed_and_leaves_no_partial_file(
    env: dict[str, str], media_root: Path, tmp_path: Path, s3w: Callable[..., Any]
) -> None:
    _fill(media_root, 250, large=2)
    before = _snapshot(media_root)
    s3w("sync", str(media_root), "--json", "--no-progress")
    dest = tmp_path / "restored"
    command = [str(Path(sys.executable).with_name("s3w")), "restore", str(dest), "-j", "2"]
    log = tmp_path / "killed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=os.environ.copy(), stdout=out, stderr=out)
    try:
        services.wait_until(
            lambda: sum(1 for p in dest.rglob("*") if p.is_file()) >= 60 or proc.poll() is not None,
            timeout=120,
            what="the first 60 files",
        )
        assert proc.poll() is None, "the restore finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Whatever is under a final name is whole; only temporary names may be partial.
    after_kill = _snapshot(dest)
    finals = {k: v for k, v in after_kill.items() if not k.endswith(".s3w-part")}
    assert 0 < len(finals) < len(before)
    for key, (digest, _mtime) in finals.items():
        assert digest == before[key][0], f"{key} is under its final name but not whole"

    data = _restore(s3w, str(dest))
    assert data["ok"] is True
    assert data["restored"] + data["unchanged"] == len(before)
    assert data["unchanged"] >= len(finals)
    assert _snapshot(dest) == before  # no temporary file left either


def test_a_damaged_object_of_the_same_size_is_caught_with_checksum(
    env: dict[str, str], media_root: Path, s3: Any, bucket: str, s3w: Callable[..., Any]
) -> None:
    _fill(media_root, 2)
    s3w("sync", str(media_root), "--json", "--no-progress")
    victim = next(p for p in media_root.rglob("*.pdf"))
    key = victim.relative_to(media_root).as_posix()
    original = victim.read_bytes()
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}", Body=os.urandom(len(original)))

    # By size and time the file looks the same: nothing is fetched, nothing reported.
    assert _restore(s3w, str(media_root))["ok"] is True
    result = s3w("restore", str(media_root), "--checksum", "--no-progress", code=1)
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1, result.stderr
    assert failed[0].startswith(f"failed: {key}: ")
    assert "other content" in failed[0]
    assert victim.read_bytes() == original  # the good local copy was kept


def test_a_newer_local_file_is_kept_unless_forced(
    env: dict[str, str], media_root: Path, s3w: Callable[..., Any]
) -> None:
    _fill(media_root, 1)
    s3w("sync", str(media_root), "--json", "--no-progress")
    page = next(p for p in media_root.rglob("page.txt"))
    synced = page.read_bytes()
    page.write_bytes(b"edited after the upload, longer than before")
    future = page.stat().st_mtime + 3600
    os.utime(page, (future, future))

    data = _restore(s3w, str(media_root))
    assert (data["kept_newer"], data["restored"]) == (1, 0)
    assert page.read_bytes().startswith(b"edited")

    forced = _restore(s3w, str(media_root), "--force")
    assert forced["restored"] == 1
    assert page.read_bytes() == synced


def test_stale_temporary_files_are_removed(
    env: dict[str, str], media_root: Path, s3w: Callable[..., Any]
) -> None:
    _fill(media_root, 1)
    s3w("sync", str(media_root), "--json", "--no-progress")
    folder = next(p.parent for p in media_root.rglob("sm.jpg"))
    stale = folder / ".sm.jpg.0123456789ab.restore.s3w-part"
    stale.write_bytes(b"half")
    data = _restore(s3w, str(media_root))
    assert data["stale_removed"] == 1
    assert not stale.exists()


def test_a_destination_that_is_a_file_is_refused_in_one_line(
    env: dict[str, str], tmp_path: Path, s3w: Callable[..., Any]
) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    result = s3w("restore", str(target), code=1)
    assert result.stderr.strip() == f"error: destination {target} exists and is not a folder"

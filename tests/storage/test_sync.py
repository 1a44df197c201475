"""The sync engine against a real S3 server: plan, upload, change detection, deletes, errors."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.support.services import wait_until

from s3w_storage.client import make_client
from s3w_storage.errors import InvalidArgument
from s3w_storage.keys import docver_key, key_for_path, ocr_key, thumbnail_key
from s3w_storage.objects import Storage
from s3w_storage.settings import load_settings
from s3w_storage.sync import MD5_METADATA, SyncOptions, build_plan, list_remote, sync


def make_storage() -> Storage:
    settings = load_settings()
    return Storage(make_client(settings), settings)


def write(root: Path, key: str, data: bytes) -> Path:
    path = root.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def papermerge_tree(root: Path, documents: int = 5) -> dict[str, bytes]:
    """A small media root shaped like Papermerge's: versions, thumbnails, OCR files."""
    files: dict[str, bytes] = {}
    for n in range(documents):
        doc, ver, page = (str(uuid.uuid4()) for _ in range(3))
        files[docver_key(ver, "document.pdf")] = b"%PDF-1.4 " + os.urandom(2000 + n)
        files[thumbnail_key(doc)] = b"\xff\xd8" + os.urandom(300)
        files[ocr_key(page, "page.txt")] = f"page text {n}".encode()
        files[ocr_key(page, "page.hocr")] = b"<html>" + os.urandom(50) + b"</html>"
    for key, data in files.items():
        write(root, key, data)
    return files


def bucket_contents(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def age(path: Path, seconds: int = 3600) -> None:
    """Set a file's mtime well in the past (as if written before the last sync)."""
    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


@pytest.mark.usefixtures("storage_env")
def test_first_sync_uploads_everything_and_a_resync_uploads_nothing(
    media_root: Path, s3: Any, bucket: str
) -> None:
    files = papermerge_tree(media_root)
    storage = make_storage()

    first = sync(storage, media_root)
    assert first.ok, first.failures
    assert (first.uploaded, first.unchanged) == (len(files), 0)
    assert first.uploaded_bytes == sum(len(d) for d in files.values())
    assert bucket_contents(s3, bucket) == files
    key = next(k for k in files if k.endswith(".pdf"))
    assert s3.head_object(Bucket=bucket, Key=key)["ContentType"] == "application/pdf"

    again = sync(storage, media_root)
    assert again.ok
    assert (again.uploaded, again.unchanged) == (0, len(files)), again.to_dict()


@pytest.mark.usefixtures("storage_env")
@pytest.mark.parametrize("spelling", ["trailing-slash", "relative"])
def test_media_root_spelling_does_not_change_keys(
    media_root: Path, s3: Any, bucket: str, spelling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = papermerge_tree(media_root, documents=2)
    if spelling == "trailing-slash":
        given = str(media_root) + "/"
    else:
        monkeypatch.chdir(media_root.parent)
        given = media_root.name
    result = sync(make_storage(), given)
    assert result.ok
    keys = set(bucket_contents(s3, bucket))
    assert keys == set(files)
    assert keys == {key_for_path(given, media_root / k) for k in files}


def test_prefix_is_applied(
    storage_env: dict[str, str],
    media_root: Path,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PM_PREFIX", "tenant-a/media")
    files = papermerge_tree(media_root, documents=2)
    s3.put_object(Bucket=bucket, Key="outside/keep.txt", Body=b"not ours")
    result = sync(make_storage(), media_root, SyncOptions(delete=True))
    assert result.ok
    assert result.deleted == 0  # objects outside the prefix are never considered
    contents = bucket_contents(s3, bucket)
    assert contents == {"outside/keep.txt": b"not ours"} | {
        f"tenant-a/media/{k}": v for k, v in files.items()
    }


@pytest.mark.usefixtures("storage_env")
def test_changed_files_are_found_by_mtime_and_by_checksum(
    media_root: Path, s3: Any, bucket: str
) -> None:
    files = {f"ocr/pages/{n:03d}/page.txt": f"text {n:03d}".encode() for n in range(100)}
    paths = {k: write(media_root, k, v) for k, v in files.items()}
    storage = make_storage()
    assert sync(storage, media_root).uploaded == 100

    # 1% changed, same size, edited after the upload: the default mode re-uploads it.
    touched = "ocr/pages/007/page.txt"
    paths[touched].write_bytes(b"TEXT 007")
    age(paths[touched], -5)  # LastModified has whole seconds: be clearly later than the upload
    result = sync(storage, media_root)
    assert (result.uploaded, result.unchanged) == (1, 99)
    assert bucket_contents(s3, bucket)[touched] == b"TEXT 007"
    age(paths[touched])  # back from the future

    # Same size, mtime set back before the upload: only --checksum can tell.
    sneaky = "ocr/pages/042/page.txt"
    paths[sneaky].write_bytes(b"TEXT 042")
    age(paths[sneaky])
    assert sync(storage, media_root).uploaded == 0
    result = sync(storage, media_root, SyncOptions(checksum=True))
    assert (result.uploaded, result.unchanged) == (1, 99), result.to_dict()
    assert bucket_contents(s3, bucket)[sneaky] == b"TEXT 042"
    assert sync(storage, media_root, SyncOptions(checksum=True)).uploaded == 0


@pytest.fixture
def small_multipart(storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Multipart from 5 MiB (the S3 minimum part size) so that tests stay small."""
    monkeypatch.setenv("PM_S3_MULTIPART_THRESHOLD", str(5 * 1024 * 1024))
    monkeypatch.setenv("PM_S3_MULTIPART_CHUNKSIZE", str(5 * 1024 * 1024))


@pytest.mark.usefixtures("small_multipart")
def test_checksum_mode_compares_multipart_objects_by_their_parts(
    media_root: Path, s3: Any, bucket: str
) -> None:
    """A multipart object's ETag is the MD5 of its parts' MD5s: checksum mode recomputes it
    from the file (no whole-file MD5 pass before the upload, none kept in the metadata)."""
    data = os.urandom(11 * 1024 * 1024)
    path = write(media_root, "docvers/aa/bb/big/document.pdf", data)
    storage = make_storage()
    result = sync(storage, media_root, SyncOptions(checksum=True))
    assert result.ok
    assert result.uploaded == 1
    head = s3.head_object(Bucket=bucket, Key="docvers/aa/bb/big/document.pdf")
    assert "-" in head["ETag"], "expected a multipart upload above the threshold"
    assert MD5_METADATA not in head["Metadata"]
    part = 5 * 1024 * 1024
    parts = [
        hashlib.md5(data[i : i + part], usedforsecurity=False).digest() for i in (0, part, 2 * part)
    ]
    composite = hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest()
    assert head["ETag"].strip('"') == f"{composite}-3"
    assert sync(storage, media_root, SyncOptions(checksum=True)).uploaded == 0

    changed = bytearray(data)
    changed[-1] ^= 0xFF
    path.write_bytes(bytes(changed))
    age(path)
    assert sync(storage, media_root, SyncOptions(checksum=True)).uploaded == 1
    body = s3.get_object(Bucket=bucket, Key="docvers/aa/bb/big/document.pdf")["Body"].read()
    assert body == bytes(changed)


@pytest.mark.usefixtures("small_multipart")
def test_an_interrupted_multipart_upload_leaves_no_parts(
    media_root: Path, s3: Any, bucket: str
) -> None:
    write(media_root, "docvers/aa/bb/big/document.pdf", os.urandom(16 * 1024 * 1024))

    def interrupt(files: int, size: int) -> None:
        if size:  # after the first part: as if the user pressed Ctrl-C
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(make_storage(), media_root, progress=interrupt)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert bucket_contents(s3, bucket) == {}


@pytest.mark.usefixtures("storage_env")
def test_delete_removes_only_unmatched_objects_and_respects_the_bound(
    media_root: Path, s3: Any, bucket: str
) -> None:
    files = papermerge_tree(media_root, documents=2)
    for n in range(3):
        s3.put_object(Bucket=bucket, Key=f"docvers/zz/zz/gone-{n}/old.pdf", Body=b"x")
    s3.put_object(Bucket=bucket, Key="thumbnails/keep.log", Body=b"excluded")
    storage = make_storage()

    assert sync(storage, media_root).deleted == 0  # off by default
    refused = sync(storage, media_root, SyncOptions(delete=True, max_delete=2))
    assert not refused.ok
    assert refused.deleted == 0
    assert refused.delete_refused is not None
    assert "max-delete" in refused.delete_refused
    assert len(bucket_contents(s3, bucket)) == len(files) + 4

    done = sync(storage, media_root, SyncOptions(delete=True, max_delete=3, exclude=("*.log",)))
    assert done.ok, done.to_dict()
    assert done.deleted == 3
    assert set(bucket_contents(s3, bucket)) == set(files) | {"thumbnails/keep.log"}
    assert all(p.exists() for p in (media_root / k for k in files))  # local files untouched


@pytest.mark.usefixtures("storage_env")
def test_dry_run_changes_nothing(media_root: Path, s3: Any, bucket: str) -> None:
    files = papermerge_tree(media_root, documents=2)
    s3.put_object(Bucket=bucket, Key="docvers/zz/zz/gone/old.pdf", Body=b"x")
    result = sync(make_storage(), media_root, SyncOptions(dry_run=True, delete=True))
    assert result.dry_run
    assert (result.planned_uploads, result.planned_deletes, result.uploaded) == (len(files), 1, 0)
    assert set(bucket_contents(s3, bucket)) == {"docvers/zz/zz/gone/old.pdf"}


@pytest.mark.usefixtures("storage_env")
def test_include_and_exclude_globs(media_root: Path, s3: Any, bucket: str) -> None:
    files = papermerge_tree(media_root, documents=3)
    options = SyncOptions(include=("docvers/*", "ocr/*"), exclude=("*.hocr",))
    result = sync(make_storage(), media_root, options)
    assert result.ok
    expected = {k for k in files if k.startswith(("docvers/", "ocr/")) and not k.endswith(".hocr")}
    assert set(bucket_contents(s3, bucket)) == expected
    assert result.excluded == len(files) - len(expected)


@pytest.mark.usefixtures("storage_env")
def test_links_and_special_files_are_skipped(media_root: Path, s3: Any, bucket: str) -> None:
    write(media_root, "docvers/aa/bb/one/document.pdf", b"%PDF-1.4 one")
    outside = media_root.parent / "secret.txt"
    outside.write_bytes(b"outside the media root")
    (media_root / "docvers" / "link.txt").symlink_to(outside)
    (media_root / "linked-dir").symlink_to(media_root.parent, target_is_directory=True)
    os.mkfifo(media_root / "docvers" / "pipe")
    result = sync(make_storage(), media_root)
    assert result.ok
    assert (result.skipped_links, result.skipped_special) == (2, 1)
    assert set(bucket_contents(s3, bucket)) == {"docvers/aa/bb/one/document.pdf"}


@pytest.mark.usefixtures("storage_env")
def test_unreadable_files_are_reported_and_the_rest_goes_on(
    media_root: Path, s3: Any, bucket: str
) -> None:
    files = papermerge_tree(media_root, documents=3)
    s3.put_object(Bucket=bucket, Key="docvers/zz/zz/gone/old.pdf", Body=b"x")
    storage = make_storage()
    options = SyncOptions(delete=True)
    plan = build_plan(storage, media_root, options)
    vanished = sorted(files)[0]
    (media_root / vanished).unlink()  # gone between the walk and the upload
    from s3w_storage.sync import execute

    result = execute(storage, plan, options)
    assert not result.ok
    assert [f.key for f in result.failures] == [vanished]
    assert "cannot read" in result.failures[0].message
    assert result.uploaded == len(files) - 1
    assert result.deleted == 0
    assert result.delete_refused is not None
    assert "docvers/zz/zz/gone/old.pdf" in bucket_contents(s3, bucket)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
@pytest.mark.usefixtures("storage_env")
def test_permission_denied_is_a_failure_not_a_crash(media_root: Path, s3: Any, bucket: str) -> None:
    files = papermerge_tree(media_root, documents=2)
    locked = media_root / sorted(files)[0]
    locked.chmod(0)
    result = sync(make_storage(), media_root)
    assert [f.key for f in result.failures] == [sorted(files)[0]]
    assert "Permission denied" in result.failures[0].message
    assert len(bucket_contents(s3, bucket)) == len(files) - 1


@pytest.mark.usefixtures("storage_env")
def test_worker_processes_upload_small_files(media_root: Path, s3: Any, bucket: str) -> None:
    files = {f"previews/pages/{n:03d}/sm.jpg": os.urandom(100 + n) for n in range(60)}
    for key, data in files.items():
        write(media_root, key, data)
    result = sync(make_storage(), media_root, SyncOptions(processes=2, jobs=4))
    assert result.ok
    assert result.processes == 2
    assert bucket_contents(s3, bucket) == files
    assert s3.head_object(Bucket=bucket, Key="previews/pages/000/sm.jpg")["ContentType"] == (
        "image/jpeg"
    )


@pytest.mark.usefixtures("storage_env")
def test_sharded_listing_finds_every_object_once(s3: Any, bucket: str) -> None:
    keys = [f"docvers/{a:02x}/{b}/f" for a in range(0, 256, 5) for b in range(25)]
    keys += ["a-first", "docvers-0", "zzz-last", "thumbnails/jpg/x/sm.jpg"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"k")
    points = [f"docvers/{a:02x}/" for a in range(256)] + ["thumbnails/jpg/"]
    found = list_remote(make_storage(), points, shards=7)
    assert sorted(found) == sorted(keys)
    assert {o.size for o in found.values()} == {1}


def test_missing_media_root_fails_before_any_network_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An endpoint nobody listens on: a network call would raise StorageUnavailable instead.
    for name, value in {
        "PM_S3_BUCKET_NAME": "nowhere",
        "PM_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InvalidArgument, match="does not exist"):
        sync(make_storage(), tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgument, match="not a directory"):
        sync(make_storage(), tmp_path / "file")


SYNC_SCRIPT = textwrap.dedent(
    """
    import sys
    from s3w_storage.client import make_client
    from s3w_storage.objects import Storage
    from s3w_storage.settings import load_settings
    from s3w_storage.sync import SyncOptions, sync

    if __name__ == "__main__":
        settings = load_settings()
        result = sync(Storage(make_client(settings), settings), sys.argv[1],
                      SyncOptions(processes=int(sys.argv[2]), jobs=2))
        print(result.uploaded, result.unchanged, len(result.failures))
    """
)


@pytest.mark.usefixtures("storage_env")
def test_an_interrupted_sync_resumes_and_completes(
    media_root: Path, s3: Any, bucket: str, tmp_path: Path
) -> None:
    files = {f"ocr/pages/{n:04d}/page.txt": os.urandom(2000) for n in range(600)}
    for key, data in files.items():
        write(media_root, key, data)
    script = tmp_path / "run_sync.py"
    script.write_text(SYNC_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(media_root), "1"],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def some_uploaded() -> bool:
        return s3.list_objects_v2(Bucket=bucket, MaxKeys=100).get("KeyCount", 0) >= 20

    try:
        wait_until(some_uploaded, timeout=60, what="the first uploads")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: parent and upload workers
        proc.communicate(timeout=30)
    partial = bucket_contents(s3, bucket)
    assert 20 <= len(partial) < len(files), "the sync was not interrupted midway"
    assert all(files[k] == v for k, v in partial.items()), "an object holds partial content"

    done = subprocess.run(
        [sys.executable, str(script), str(media_root), "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    uploaded, unchanged, failed = map(int, done.stdout.split())
    assert failed == 0
    assert uploaded + unchanged == len(files)
    assert bucket_contents(s3, bucket) == files


@pytest.mark.usefixtures("small_multipart")
def test_a_file_that_changes_while_it_uploads_is_not_stored_and_is_sent_next_run(
    media_root: Path, s3: Any, bucket: str
) -> None:
    old = os.urandom(11 * 1024 * 1024)
    path = write(media_root, "docvers/aa/bb/grow/document.pdf", old)
    storage = make_storage()
    assert sync(storage, media_root).uploaded == 1
    new = os.urandom(11 * 1024 * 1024)
    path.write_bytes(new)
    age(path, 60)
    grown: list[int] = []

    def append_once(files: int, size: int) -> None:
        if size and not grown:  # after the first part was read: the file grows
            with open(path, "ab") as handle:
                handle.write(b"appended while uploading")
            grown.append(size)

    result = sync(storage, media_root, SyncOptions(checksum=True), progress=append_once)
    assert result.changed_during_upload == 1
    assert [f.key for f in result.failures] == ["docvers/aa/bb/grow/document.pdf"]
    assert "changed during upload" in result.failures[0].message
    assert "\n" not in result.failures[0].message
    # The object is still the old version, whole; no parts are left behind.
    assert bucket_contents(s3, bucket) == {"docvers/aa/bb/grow/document.pdf": old}
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    again = sync(storage, media_root, SyncOptions(checksum=True))
    assert (again.uploaded, again.failures) == (1, [])
    assert bucket_contents(s3, bucket) == {
        "docvers/aa/bb/grow/document.pdf": new + b"appended while uploading"
    }


@pytest.mark.usefixtures("storage_env")
def test_names_that_cannot_be_keys_are_reported_one_line_each_and_the_rest_completes(
    media_root: Path, s3: Any, bucket: str
) -> None:
    folder = media_root / "docvers" / "aa" / "bb"
    folder.mkdir(parents=True)
    (folder / "good.pdf").write_bytes(b"%PDF good")
    with open(os.path.join(os.fsencode(folder), b"latin1-\xe9t\xe9.pdf"), "wb") as handle:
        handle.write(b"%PDF latin-1 name")
    (folder / "tab\there.pdf").write_bytes(b"%PDF control character")
    result = sync(make_storage(), media_root)
    assert result.uploaded == 1
    assert bucket_contents(s3, bucket) == {"docvers/aa/bb/good.pdf": b"%PDF good"}
    messages = sorted(f.message for f in result.failures)
    assert len(messages) == 2, messages
    assert "not valid UTF-8" in messages[0] or "not valid UTF-8" in messages[1]
    assert any("control character" in m for m in messages)
    for message in messages:
        assert "\n" not in message
    # The summary can be printed and serialised whatever the names were.
    import json

    json.dumps(result.to_dict())

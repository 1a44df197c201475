"""``SyncOptions.within``: one shard of a distributed sync walks, lists and deletes only its
own folder prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.storage.test_sync import make_storage as _storage
from tests.storage.test_sync import write as _write

from s3w_storage.errors import InvalidArgument
from s3w_storage.sync import SyncOptions, build_plan, sync, walk


def _keys(s3: Any, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_within_syncs_and_deletes_only_its_folder(
    storage_env: dict[str, str], bucket: str, s3: Any, media_root: Path
) -> None:
    _write(media_root, "docvers/ab/cd/one.pdf", b"one")
    _write(media_root, "docvers/ab/ef/two.pdf", b"two")
    _write(media_root, "docvers/ac/00/three.pdf", b"three")
    _write(media_root, "top.txt", b"top")
    s3.put_object(Bucket=bucket, Key="docvers/ab/zz/stale.pdf", Body=b"x")
    s3.put_object(Bucket=bucket, Key="docvers/ac/zz/other-shard.pdf", Body=b"y")
    s3.put_object(Bucket=bucket, Key="docvers/abc", Body=b"a sibling, not inside ab/")

    options = SyncOptions(within="docvers/ab/", delete=True)
    result = sync(_storage(), media_root, options)

    assert result.ok, result.failures
    assert (result.local_files, result.remote_objects) == (2, 1)
    assert (result.uploaded, result.deleted) == (2, 1)
    assert _keys(s3, bucket) == {
        "docvers/ab/cd/one.pdf",
        "docvers/ab/ef/two.pdf",
        "docvers/ac/zz/other-shard.pdf",
        "docvers/abc",
    }


def test_within_a_missing_folder_is_empty_and_lists_remote(
    storage_env: dict[str, str], bucket: str, s3: Any, media_root: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="previews/pages/9f/aa/p/sm.jpg", Body=b"x")
    plan = build_plan(_storage(), media_root, SyncOptions(within="previews/pages/9f/", delete=True))
    assert (plan.local_files, plan.remote_objects) == (0, 1)
    assert plan.deletes == ["previews/pages/9f/aa/p/sm.jpg"]


def test_within_never_follows_a_link(media_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _write(outside, "ab/secret.pdf", b"s")
    (media_root / "docvers").symlink_to(outside, target_is_directory=True)
    assert walk(media_root, within="docvers/ab/").files == []


@pytest.mark.parametrize("within", ["docvers/ab", "/docvers/", "docvers/../x/", "a//"])
def test_within_must_be_a_relative_folder_prefix(media_root: Path, within: str) -> None:
    with pytest.raises(InvalidArgument, match="folder prefix"):
        walk(media_root, within=within)

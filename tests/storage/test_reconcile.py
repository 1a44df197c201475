"""The sorted streams the audit merges: the merge itself, the owner of a key, and a walk of
the media root in the order S3 lists keys."""

from __future__ import annotations

from pathlib import Path

from s3w_storage.reconcile import merge, owner_id, walk_sorted

ID = "0a1b2c3d-1111-4222-8333-444455556666"


def test_merge_lines_up_keys_from_every_stream() -> None:
    rows = list(merge([("a", 1), ("c", 3)], [("b", "x"), ("c", "y")], []))
    assert rows == [("a", [1, None, None]), ("b", [None, "x", None]), ("c", [3, "y", None])]


def test_owner_id_accepts_only_the_sharded_layout() -> None:
    assert owner_id(f"thumbnails/jpg/0a/1b/{ID}/sm.jpg", "thumbnails/jpg") == ID
    assert owner_id(f"thumbnails/jpg/0a/1c/{ID}/sm.jpg", "thumbnails/jpg") is None  # wrong shard
    assert owner_id(f"thumbnails/jpg/0a/1b/{ID.upper()}/sm.jpg", "thumbnails/jpg") is None
    assert owner_id(f"thumbnails/jpg/0a/1b/{ID}/x/sm.jpg", "thumbnails/jpg") is None
    assert owner_id("thumbnails/other.png", "thumbnails/jpg") is None


def test_walk_sorted_yields_keys_in_listing_order(tmp_path: Path) -> None:
    names = ["docvers/a/x", "docvers/a-b", "docvers/a.b/y", "docvers/B", "docvers/ä", "docvers/z"]
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"1")
    (tmp_path / "docvers/.x.123.restore.s3w-part").write_bytes(b"partial")
    keys = [key for key, _size, _path in walk_sorted(str(tmp_path), "docvers")]
    assert keys == sorted(names)
    assert keys == sorted(names, key=lambda k: k.encode())  # S3's UTF-8 byte order

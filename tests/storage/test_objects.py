"""Object operations against the real S3 server: upload, download, head, list, delete."""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from s3w_storage import InvalidKey, ObjectNotFound, StorageError
from s3w_storage.client import make_client
from s3w_storage.objects import Storage, get_storage
from s3w_storage.settings import load_settings

MiB = 2**20


def _storage() -> Storage:
    settings = load_settings()
    return Storage(make_client(settings), settings)


def _listed(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def test_bytes_round_trip_under_a_prefix(
    monkeypatch: pytest.MonkeyPatch, storage_env: dict[str, str], bucket: str, s3: Any
) -> None:
    monkeypatch.setenv("PM_PREFIX", "tenant/prod")
    storage = _storage()
    storage.upload_bytes(b"hello", "docvers/ab/cd/x/a.txt")
    assert _listed(s3, bucket) == ["tenant/prod/docvers/ab/cd/x/a.txt"]
    assert storage.get_bytes("docvers/ab/cd/x/a.txt") == b"hello"
    assert storage.full_key("a/b") == "tenant/prod/a/b"
    assert storage.relative_key("tenant/prod/a/b") == "a/b"
    with pytest.raises(InvalidKey, match="outside the prefix"):
        storage.relative_key("other/a/b")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("file.pdf", "application/pdf"),
        ("sm.jpg", "image/jpeg"),
        ("page.txt", "text/plain"),
        ("page.svg", "image/svg+xml"),
        ("page.hocr", "text/html"),
    ],
)
def test_content_types_are_stored(
    storage: Storage, tmp_path: Path, s3: Any, bucket: str, name: str, content_type: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"content")
    storage.upload_file(path, f"f/{name}")
    storage.upload_bytes(b"content", f"b/{name}")
    for key in (f"f/{name}", f"b/{name}"):
        assert s3.head_object(Bucket=bucket, Key=key)["ContentType"] == content_type
        info = storage.head(key)
        assert info is not None
        assert info.content_type == content_type


def test_explicit_content_type_and_metadata(storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 10)
    storage.upload_file(path, "blob", content_type="application/x-custom", metadata={"sha": "1"})
    info = storage.head("blob")
    assert info is not None
    assert (info.size, info.content_type, dict(info.metadata)) == (
        10,
        "application/x-custom",
        {"sha": "1"},
    )
    assert info.etag == hashlib.md5(b"x" * 10).hexdigest()  # noqa: S324 - S3's ETag is MD5
    assert not info.is_multipart


def test_head_and_exists_of_a_missing_key(storage: Storage) -> None:
    assert storage.head("no/such/key.pdf") is None
    assert storage.exists("no/such/key.pdf") is False
    storage.upload_bytes(b"1", "no/such/key.pdf")
    assert storage.exists("no/such/key.pdf") is True


def test_get_bytes_of_a_missing_key(storage: Storage, bucket: str) -> None:
    with pytest.raises(ObjectNotFound, match=f"no object at missing.txt in {bucket}"):
        storage.get_bytes("missing.txt")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a\\b", "a\x00b"])
def test_unsafe_keys_refused_before_any_request(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.upload_bytes(b"x", key)
    with pytest.raises(InvalidKey):
        storage.head(key)


def test_download_is_atomic_and_keeps_the_umask_mode(storage: Storage, tmp_path: Path) -> None:
    storage.upload_bytes(b"payload", "docvers/a.pdf")
    dest = tmp_path / "media" / "docvers" / "a.pdf"
    assert storage.download_file("docvers/a.pdf", dest) == dest
    assert dest.read_bytes() == b"payload"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.pdf"]


def test_failed_download_leaves_the_destination_untouched(storage: Storage, tmp_path: Path) -> None:
    dest = tmp_path / "a.pdf"
    dest.write_bytes(b"previous version")
    with pytest.raises(ObjectNotFound):
        storage.download_file("missing.pdf", dest)
    assert dest.read_bytes() == b"previous version"
    assert [p.name for p in tmp_path.iterdir()] == ["a.pdf"]  # no temporary file left


def test_multipart_upload_and_identical_download(
    monkeypatch: pytest.MonkeyPatch,
    storage_env: dict[str, str],
    tmp_path: Path,
    s3: Any,
    bucket: str,
) -> None:
    monkeypatch.setenv("PM_S3_MULTIPART_THRESHOLD", str(8 * MiB))
    monkeypatch.setenv("PM_S3_MULTIPART_CHUNKSIZE", str(8 * MiB))
    storage = _storage()
    source = tmp_path / "big.pdf"
    with source.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(MiB))
    storage.upload_file(source, "docvers/big.pdf")
    info = storage.head("docvers/big.pdf")
    assert info is not None
    assert info.size == 64 * MiB
    assert info.etag.endswith("-8"), info.etag  # eight 8 MiB parts
    assert info.is_multipart
    assert info.content_type == "application/pdf"
    copy = storage.download_file("docvers/big.pdf", tmp_path / "copy" / "big.pdf")
    assert _sha256(copy) == _sha256(source)


def test_below_the_threshold_is_a_single_put(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "small.pdf"
    source.write_bytes(os.urandom(MiB))
    storage.upload_file(source, "small.pdf")
    info = storage.head("small.pdf")
    assert info is not None
    assert "-" not in info.etag


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
def test_list_and_delete_a_prefix_of_2500_objects(
    monkeypatch: pytest.MonkeyPatch, storage_env: dict[str, str], s3: Any, bucket: str
) -> None:
    monkeypatch.setenv("PM_PREFIX", "pm")
    storage = _storage()
    folder = "docvers/ab/cd/"
    wanted = [f"{folder}{i:05d}.txt" for i in range(2500)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: storage.upload_bytes(b"x", key), wanted))
    storage.upload_bytes(b"keep", "docvers/ab/ce/keep.txt")  # a sibling folder
    s3.put_object(Bucket=bucket, Key="outside-prefix.txt", Body=b"keep")

    listed = list(storage.iter_objects(folder))
    assert [o.key for o in listed] == wanted
    assert {o.size for o in listed} == {1}
    after = [o.key for o in storage.iter_objects(folder, start_after=wanted[1999])]
    assert after == wanted[2000:]

    result = storage.delete_prefix(folder)
    assert (result.deleted, result.errors) == (2500, [])
    assert list(storage.iter_objects(folder)) == []
    assert sorted(_listed(s3, bucket)) == ["outside-prefix.txt", "pm/docvers/ab/ce/keep.txt"]


def test_delete_of_missing_keys_is_success(storage: Storage) -> None:
    storage.upload_bytes(b"1", "a.txt")
    result = storage.delete(["a.txt", "never-there.txt", "also/missing.txt"])
    assert (result.deleted, result.errors) == (3, [])
    result.raise_for_errors()
    assert storage.delete_prefix("nothing/here/").deleted == 0
    assert storage.exists("a.txt") is False


def test_delete_prefix_needs_a_folder(storage: Storage) -> None:
    with pytest.raises(InvalidKey, match="must end with '/'"):
        storage.delete_prefix("docvers/ab")
    with pytest.raises(InvalidKey):
        storage.delete_prefix("/")


def test_upload_many(storage: Storage, tmp_path: Path) -> None:
    items: list[tuple[str | os.PathLike[str], str]] = []
    for i in range(50):
        path = tmp_path / f"{i}.txt"
        path.write_text(str(i))
        items.append((path, f"many/{i}.txt"))
    items.append((tmp_path / "absent.txt", "many/absent.txt"))
    results = dict(storage.upload_many(items, jobs=8))
    assert [k for k, e in results.items() if e is None] == [f"many/{i}.txt" for i in range(50)]
    error = results["many/absent.txt"]
    assert isinstance(error, StorageError)
    assert "cannot read" in str(error)
    assert storage.get_bytes("many/49.txt") == b"49"


def test_upload_many_sizes_on_both_sides_of_the_in_memory_bound(
    storage: Storage, tmp_path: Path
) -> None:
    """Empty, read-whole and streamed files (lean PUTs), and one above the multipart
    threshold (botocore), each byte-identical with its content type."""
    IN_MEMORY = 8 * 1024 * 1024

    sizes = {
        "empty.txt": 0,
        "whole.pdf": 4096,
        "streamed.pdf": IN_MEMORY + 123_457,
        "multipart.pdf": storage.settings.multipart_threshold + 1,
    }
    items: list[tuple[str | os.PathLike[str], str]] = []
    for name, size in sizes.items():
        path = tmp_path / name
        path.write_bytes(os.urandom(size))
        items.append((path, f"sizes/{name}"))
    assert storage.upload_many(items, jobs=4) == [(f"sizes/{n}", None) for n in sizes]
    for path, key in items:
        assert storage.get_bytes(key) == Path(path).read_bytes()
        head = storage.head(key)
        assert head is not None
        assert head.content_type == ("text/plain" if key.endswith(".txt") else "application/pdf")


def test_get_storage_is_per_process(storage_env: dict[str, str], bucket: str) -> None:
    first = get_storage()
    assert get_storage() is first
    assert first.bucket == bucket
    get_storage.cache_clear()  # type: ignore[attr-defined]
    assert get_storage() is not first


class _ConnectProxy:
    """A minimal HTTP ``CONNECT`` proxy on loopback that counts its tunnels: no test server
    stands between a client and S3 the way a corporate proxy does."""

    def __init__(self) -> None:
        import socket
        import threading

        self.tunnels = 0
        self.auth: list[str] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: Any) -> None:
        import selectors
        import socket

        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        lines = head.split(b"\r\n")
        method, target, version = lines[0].split(b" ", 2)
        self.auth += [
            line.split(b":", 1)[1].strip().decode()
            for line in lines
            if line.lower().startswith(b"proxy-authorization:")
        ]
        if method == b"CONNECT":  # a tunnel (https, or http through CONNECT)
            host, port = target.decode().rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:  # a forwarded plain-http request: absolute URL, relayed on this connection
            parts = urlsplit(target.decode())
            upstream = socket.create_connection((parts.hostname, parts.port or 80))
            origin = (parts.path + ("?" + parts.query if parts.query else "")).encode()
            kept = [
                line for line in lines[1:] if not line.lower().startswith(b"proxy-authorization:")
            ]
            upstream.sendall(b" ".join([method, origin, version]) + b"\r\n" + b"\r\n".join(kept))
        self.tunnels += 1
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self.server.close()


def test_upload_many_goes_through_the_proxy_the_environment_names(
    storage: Storage, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    proxy = _ConnectProxy()
    try:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, f"http://ops:s%40cret@127.0.0.1:{proxy.port}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        items: list[tuple[str | os.PathLike[str], str]] = []
        for i in range(6):
            path = tmp_path / f"p{i}.txt"
            path.write_bytes(f"through the proxy {i}".encode())
            items.append((path, f"proxied/p{i}.txt"))
        assert storage.upload_many(items, jobs=3) == [(k, None) for _, k in items]
        assert 1 <= proxy.tunnels <= len(items)  # kept-alive connections are reused
        assert set(proxy.auth) == {"Basic " + base64.b64encode(b"ops:s@cret").decode()}
    finally:
        proxy.close()
    for path, key in items:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == Path(path).read_bytes()


def test_a_proxy_that_is_not_http_is_a_clear_error(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3w_storage.errors import ConfigError

    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    monkeypatch.setenv("http_proxy", "socks5://127.0.0.1:1080")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "a.txt").write_bytes(b"a")
    with pytest.raises(ConfigError, match=r"only http:// and https:// proxies are supported"):
        storage.upload_many([(tmp_path / "a.txt", "a.txt")])

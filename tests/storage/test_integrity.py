"""Every byte verified: a body damaged on the wire is never stored or returned silently, every
PUT and part carries a checksum, and the endpoint rules hold wherever the endpoint came from.

The damage is done by a proxy on loopback (:mod:`tests.support.proxy`): a real server
cannot be made to receive or send a flipped byte on demand.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import clear_caches
from tests.support import services, session_tokens
from tests.support.proxy import HttpProxy, Recorded

from s3w_storage.client import make_client
from s3w_storage.errors import ConfigError, StorageError
from s3w_storage.objects import Storage
from s3w_storage.settings import load_settings
from s3w_storage.sync import SyncOptions, sync

_CHECKSUM_HEADERS = ("x-amz-checksum-sha256", "x-amz-checksum-crc64nvme", "content-md5")


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


@pytest.fixture
def proxied(
    storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[HttpProxy, Storage]]:
    """A Storage whose endpoint is a recording proxy in front of the test server."""
    with HttpProxy(_port(storage_env["PM_S3_ENDPOINT_URL"])) as proxy:
        monkeypatch.setenv("PM_S3_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("PM_S3_MULTIPART_THRESHOLD", str(5 * 1024 * 1024))
        monkeypatch.setenv("PM_S3_MULTIPART_CHUNKSIZE", str(5 * 1024 * 1024))
        clear_caches()
        settings = load_settings()
        yield proxy, Storage(make_client(settings), settings)


def _without_checksum(puts: list[Recorded]) -> list[str]:
    return [
        f"{r.method} {r.target}"
        for r in puts
        if not any(name in r.headers for name in _CHECKSUM_HEADERS)
    ]


# ------------------------------------------------------------------ damaged bodies


def test_a_put_body_damaged_on_the_wire_is_refused_and_sent_again(
    proxied: tuple[HttpProxy, Storage], s3: Any, bucket: str
) -> None:
    proxy, storage = proxied
    proxy.flip_put = 1
    data = os.urandom(100_000)
    storage.upload_bytes(data, "damaged/put.bin")
    assert proxy.flipped_puts == 1
    statuses = [r.status for r in proxy.puts()]
    assert statuses == [400, 200], f"expected the damaged PUT refused, then a good one: {statuses}"
    assert s3.get_object(Bucket=bucket, Key="damaged/put.bin")["Body"].read() == data


def test_a_damaged_part_never_leaves_a_wrong_object(
    proxied: tuple[HttpProxy, Storage], s3: Any, bucket: str, tmp_path: Path
) -> None:
    proxy, storage = proxied
    proxy.flip_put = 1
    data = os.urandom(11 * 1024 * 1024)
    path = tmp_path / "big.pdf"
    path.write_bytes(data)
    problem = ""
    try:
        storage.upload_file(path, "damaged/big.pdf")
    except StorageError as exc:  # refused and not retried: a clear error, no object
        problem = str(exc)
    if problem:
        assert "BadDigest" in problem, problem
        assert storage.head("damaged/big.pdf") is None
    else:
        assert s3.get_object(Bucket=bucket, Key="damaged/big.pdf")["Body"].read() == data
    assert proxy.flipped_puts == 1
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_get_body_damaged_on_the_wire_is_read_again(
    proxied: tuple[HttpProxy, Storage], s3: Any, bucket: str
) -> None:
    proxy, storage = proxied
    data = os.urandom(50_000)
    s3.put_object(Bucket=bucket, Key="damaged/get.bin", Body=data)
    proxy.flip_get = 1
    assert storage.get_bytes("damaged/get.bin") == data
    assert proxy.flipped_gets == 1


def test_a_get_body_damaged_every_time_fails_loudly(
    proxied: tuple[HttpProxy, Storage], s3: Any, bucket: str, tmp_path: Path
) -> None:
    proxy, storage = proxied
    s3.put_object(Bucket=bucket, Key="damaged/always.bin", Body=os.urandom(50_000))
    proxy.flip_get = 10
    with pytest.raises(StorageError, match="does not match the stored MD5"):
        storage.get_bytes("damaged/always.bin")
    with pytest.raises(StorageError, match="does not match the stored MD5"):
        storage.download_file("damaged/always.bin", tmp_path / "always.bin")
    assert not (tmp_path / "always.bin").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial file left


def test_a_damaged_range_of_a_large_download_is_refused(
    proxied: tuple[HttpProxy, Storage], tmp_path: Path
) -> None:
    proxy, storage = proxied
    data = os.urandom(11 * 1024 * 1024)
    source = tmp_path / "src.pdf"
    source.write_bytes(data)
    storage.upload_file(source, "damaged/large.pdf")  # multipart: ETag "<md5 of md5s>-3"
    target = tmp_path / "out" / "large.pdf"
    assert storage.download_file("damaged/large.pdf", target) == target
    assert target.read_bytes() == data
    proxy.flip_get = 1
    with pytest.raises(StorageError, match="does not match the stored MD5"):
        storage.download_file("damaged/large.pdf", tmp_path / "out" / "again.pdf")
    assert not (tmp_path / "out" / "again.pdf").exists()


# ------------------------------------------------------------------ checksum on every PUT


def test_every_put_and_part_carries_a_checksum_on_every_path(
    proxied: tuple[HttpProxy, Storage], tmp_path: Path, other_bucket: str
) -> None:
    proxy, storage = proxied
    small, large = tmp_path / "small.txt", tmp_path / "large.pdf"
    small.write_bytes(b"small")
    large.write_bytes(os.urandom(6 * 1024 * 1024))
    seen: dict[str, int] = {}

    def check(path: str) -> None:
        puts = proxy.puts()
        assert puts, f"{path}: no PUT was recorded"
        assert _without_checksum(puts) == [], f"{path}: PUTs without a checksum"
        seen[path] = len(puts)
        proxy.requests.clear()

    storage.upload_file(small, "paths/upload-small.txt")
    storage.upload_file(large, "paths/upload-large.pdf")
    check("upload_file")
    storage.upload_bytes(b"bytes", "paths/bytes.txt")
    check("upload_bytes")
    assert storage.upload_many([(small, "paths/many.txt"), (large, "paths/many.pdf")]) == [
        ("paths/many.txt", None),
        ("paths/many.pdf", None),
    ]
    check("upload_many")
    media = tmp_path / "media"
    (media / "docvers" / "aa").mkdir(parents=True)
    (media / "docvers" / "aa" / "one.pdf").write_bytes(b"%PDF-1.4 one")
    (media / "docvers" / "aa" / "big.pdf").write_bytes(os.urandom(6 * 1024 * 1024))
    assert sync(storage, media, SyncOptions(processes=0)).ok
    check("sync")
    from s3w_storage.migrate import MigrateOptions, migrate

    target_settings = storage.settings.model_copy(update={"bucket_name": other_bucket})
    target = Storage(make_client(target_settings), target_settings)
    result = migrate(storage, target, MigrateOptions(server_side=False))
    assert result.ok, result.failures
    check("migrate")
    # Part uploads of the large files: 2 parts each.
    assert seen["upload_file"] >= 3
    assert seen["sync"] >= 3


@pytest.fixture
def other_bucket(s3: Any) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    yield name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


# ------------------------------------------------------------------ endpoints


@pytest.mark.parametrize(
    ("variable", "shown"),
    [("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL"), ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_S3")],
)
def test_a_plain_http_endpoint_from_aws_variables_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch, variable: str, shown: str
) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "papers")
    monkeypatch.setenv(variable, "http://store.example.invalid:9000")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert f"{shown} uses plain http to store.example.invalid" in str(info.value)
    assert "PM_S3_ALLOW_HTTP" in str(info.value)


def test_a_plain_http_endpoint_from_a_profile_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nendpoint_url = http://store.example.invalid:9000\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "papers")
    with pytest.raises(ConfigError, match="profile default uses plain http"):
        load_settings()
    monkeypatch.setenv("PM_S3_ALLOW_HTTP", "true")
    settings = load_settings()
    assert settings.effective_endpoint == "http://store.example.invalid:9000"
    assert settings.endpoint_source == "profile default"


def test_r2_style_auto_region_is_accepted(
    storage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, s3: Any, bucket: str
) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "cloudflare")
    monkeypatch.setenv("R2_ACCESS_KEY_ID", storage_env["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", storage_env["AWS_SECRET_ACCESS_KEY"])
    clear_caches()
    settings = load_settings()
    assert settings.effective_region == "auto"
    storage = Storage(make_client(settings), settings)
    storage.upload_bytes(b"signed for auto", "r2/auto.txt")
    assert storage.get_bytes("r2/auto.txt") == b"signed for auto"
    assert s3.get_object(Bucket=bucket, Key="r2/auto.txt")["Body"].read() == b"signed for auto"


VIRTUAL_DOMAIN = "s3w.test"
VIRTUAL_BUCKET = "s3w-virtual"


def test_virtual_hosted_addressing_and_a_session_token_against_a_real_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = f"{VIRTUAL_BUCKET}.{VIRTUAL_DOMAIN}"
    try:
        resolved = socket.gethostbyname(host)
    except OSError:
        resolved = ""
    if resolved != "127.0.0.1":
        pytest.skip(
            f"{host} does not resolve to 127.0.0.1: add "
            f"'127.0.0.1 {VIRTUAL_DOMAIN} {host}' to /etc/hosts (.ci/run does)"
        )
    server = services.start_seaweedfs(
        access_key="virtual-admin",
        secret_key="virtual-secret",
        base=tmp_path,
        domain=VIRTUAL_DOMAIN,
    )
    try:
        with HttpProxy(server.ports["s3"]) as proxy:
            creds = server.temporary_credentials(session_name="s3w-virtual")
            env = {
                "PM_S3_ENDPOINT_URL": f"http://{VIRTUAL_DOMAIN}:{proxy.port}",
                "PM_S3_ALLOW_HTTP": "true",
                "PM_S3_ADDRESSING_STYLE": "virtual",
                "PM_S3_BUCKET_NAME": VIRTUAL_BUCKET,
                **session_tokens.as_env(creds),
            }
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            clear_caches()
            settings = load_settings()
            client = make_client(settings)
            client.create_bucket(Bucket=VIRTUAL_BUCKET)
            storage = Storage(client, settings)
            storage.upload_bytes(b"virtually hosted", "v/one.txt")
            assert storage.get_bytes("v/one.txt") == b"virtually hosted"
            assert [o.key for o in storage.iter_objects("v/")] == ["v/one.txt"]
            data_requests = [r for r in proxy.requests if r.method in ("PUT", "GET")]
            assert data_requests
            for request in data_requests:
                assert request.headers["host"] == f"{host}:{proxy.port}", request.target
                assert not request.path.startswith(f"/{VIRTUAL_BUCKET}/"), request.target
                assert request.headers["x-amz-security-token"] == creds["SessionToken"]
    finally:
        server.stop()

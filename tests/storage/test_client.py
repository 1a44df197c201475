"""Client construction, checked offline, and one client per process."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from s3w_storage.client import client_config, get_client, make_client
from s3w_storage.settings import load_settings

ACCOUNT = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def r2_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "STORAGE_BACKEND": "cloudflare",
        "PM_S3_BUCKET_NAME": "papers",
        "R2_ACCESS_KEY_ID": "r2-key",
        "R2_SECRET_ACCESS_KEY": "r2-secret",
        "R2_ACCOUNT_ID": ACCOUNT,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "STORAGE_BACKEND": "aws",
        "PM_S3_BUCKET_NAME": "papers",
        "AWS_ACCESS_KEY_ID": "aws-key",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "AWS_REGION_NAME": "eu-central-1",
    }.items():
        monkeypatch.setenv(name, value)


def _signed_query(client: object) -> dict[str, list[str]]:
    url = client.generate_presigned_url(  # type: ignore[attr-defined]
        "get_object", Params={"Bucket": "papers", "Key": "a.pdf"}, ExpiresIn=60
    )
    return parse_qs(urlsplit(url).query)


@pytest.mark.usefixtures("r2_env")
def test_r2_client() -> None:
    client = make_client(load_settings())
    config = client.meta.config
    assert client.meta.endpoint_url == f"https://{ACCOUNT}.r2.cloudflarestorage.com"
    assert client.meta.region_name == "auto"
    assert config.signature_version == "s3v4"
    # Every request with a body carries a checksum, R2 included (it verifies them).
    assert config.request_checksum_calculation == "when_supported"
    assert config.response_checksum_validation == "when_supported"
    assert config.s3 == {"addressing_style": "path"}
    query = _signed_query(client)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("r2-key/")
    assert query["X-Amz-Credential"][0].endswith("/auto/s3/aws4_request")


@pytest.mark.usefixtures("aws_env")
def test_aws_client() -> None:
    client = make_client(load_settings())
    config = client.meta.config
    assert client.meta.endpoint_url == "https://s3.eu-central-1.amazonaws.com"
    assert client.meta.region_name == "eu-central-1"
    assert config.signature_version == "s3v4"
    assert config.request_checksum_calculation == "when_supported"
    assert config.response_checksum_validation == "when_supported"
    query = _signed_query(client)
    assert query["X-Amz-Credential"][0].endswith("/eu-central-1/s3/aws4_request")


@pytest.mark.usefixtures("aws_env")
def test_aws_without_keys_uses_the_boto3_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    shared = tmp_path / "credentials"
    shared.write_text("[default]\naws_access_key_id = file-key\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    settings = load_settings()
    assert settings.credentials() is None
    query = _signed_query(make_client(settings))
    assert query["X-Amz-Credential"][0].startswith("file-key/")


@pytest.mark.usefixtures("r2_env")
@pytest.mark.parametrize(
    ("value", "algorithm"),
    [
        (None, "sha256"),
        ("auto", "sha256"),
        ("sha256", "sha256"),
        ("crc64nvme", "crc64nvme"),
        ("md5", "md5"),
        # The older names meant "checksums on"; they now choose the default.
        ("when_supported", "sha256"),
        ("when_required", "sha256"),
    ],
)
def test_checksum_chooses_the_algorithm_and_is_never_off(
    monkeypatch: pytest.MonkeyPatch, value: str | None, algorithm: str
) -> None:
    if value is not None:
        monkeypatch.setenv("PM_S3_CHECKSUM", value)
    settings = load_settings()
    assert settings.checksum_algorithm == algorithm
    config = client_config(settings)
    assert config.request_checksum_calculation == "when_supported"
    assert config.response_checksum_validation == "when_supported"


@pytest.mark.usefixtures("aws_env")
def test_custom_endpoint_is_path_style_and_not_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_S3_ENDPOINT_URL", "https://minio.example.org:9000/")
    client = make_client(load_settings())
    assert client.meta.endpoint_url == "https://minio.example.org:9000"
    assert client.meta.config.s3 == {"addressing_style": "path"}
    assert client.meta.config.request_checksum_calculation == "when_supported"


@pytest.mark.usefixtures("aws_env")
def test_retries_timeouts_and_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    config = client_config(load_settings())
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert config.connect_timeout == 5.0
    assert config.read_timeout == 60.0
    assert config.max_pool_connections >= load_settings().max_concurrency
    monkeypatch.setenv("PM_S3_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PM_S3_CONNECT_TIMEOUT", "1.5")
    monkeypatch.setenv("PM_S3_READ_TIMEOUT", "7")
    monkeypatch.setenv("PM_S3_MAX_CONCURRENCY", "40")
    settings = load_settings()
    config = client_config(settings)
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7.0)
    assert config.max_pool_connections >= 40
    assert client_config(settings, pool_size=3).max_pool_connections == 3


@pytest.mark.usefixtures("aws_env")
def test_get_client_is_one_per_process_until_cleared() -> None:
    first = get_client()
    assert get_client() is first
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(get_client()))
    thread.start()
    thread.join()
    assert seen == [first]  # threads share the process's client
    get_client.cache_clear()
    assert get_client() is not first


def test_get_client_after_fork_is_a_new_working_client(
    storage_env: dict[str, str], bucket: str, s3: object
) -> None:
    s3.put_object(Bucket=bucket, Key="probe.txt", Body=b"x")  # type: ignore[attr-defined]
    parent = get_client()
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() when other threads exist (botocore may leave some);
        # the child below only builds a fresh client and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child
        status = b"?"
        try:
            child = get_client()
            keys = [o["Key"] for o in child.list_objects_v2(Bucket=bucket)["Contents"]]
            status = b"new" if child is not parent and get_client() is child else b"same"
            status += b" " + ",".join(keys).encode()
        finally:
            os.write(write, status)
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    assert answer == "new probe.txt"
    assert get_client() is parent

"""Storage settings: every environment name and alias, one error listing every problem, laziness."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from s3w_storage import ConfigError
from s3w_storage.settings import StorageSettings, get_settings, load_settings

SECRET = "s3cr3t-value-never-printed"


@pytest.mark.parametrize(
    ("env", "value", "field", "expected"),
    [
        ("STORAGE_BACKEND", "cloudflare", "backend", "cloudflare"),
        ("PM_STORAGE_BACKEND", "cloudflare", "backend", "cloudflare"),
        ("PM_S3_BUCKET_NAME", "media-bucket", "bucket_name", "media-bucket"),
        ("PM_BUCKET_NAME", "media-bucket", "bucket_name", "media-bucket"),
        ("PM_PREFIX", "tenant/prod", "prefix", "tenant/prod"),
        ("PM_MEDIA_ROOT", "/srv/media", "media_root", "/srv/media"),
        ("AWS_REGION_NAME", "eu-central-1", "aws_region_name", "eu-central-1"),
        ("R2_ACCOUNT_ID", "abc123", "r2_account_id", "abc123"),
        ("PM_R2_ACCOUNT_ID", "abc123", "r2_account_id", "abc123"),
        ("PM_S3_ENDPOINT_URL", "https://s3.example.org", "endpoint_url", "https://s3.example.org"),
        ("PM_S3_ADDRESSING_STYLE", "virtual", "addressing_style", "virtual"),
        ("PM_S3_ALLOW_HTTP", "true", "allow_http", True),
        ("PM_S3_CHECKSUM", "when_supported", "checksum", "when_supported"),
        ("PM_S3_RETRY_MODE", "adaptive", "retry_mode", "adaptive"),
        ("PM_S3_MAX_ATTEMPTS", "3", "max_attempts", 3),
        ("PM_S3_CONNECT_TIMEOUT", "2.5", "connect_timeout", 2.5),
        ("PM_S3_READ_TIMEOUT", "30", "read_timeout", 30.0),
        ("PM_S3_MAX_CONCURRENCY", "32", "max_concurrency", 32),
        ("PM_S3_MULTIPART_THRESHOLD", str(128 * 2**20), "multipart_threshold", 128 * 2**20),
        ("PM_S3_MULTIPART_CHUNKSIZE", str(8 * 2**20), "multipart_chunksize", 8 * 2**20),
        ("PRESIGNED_URL_EXPIRES", "600", "presigned_url_expires", 600),
    ],
)
def test_each_environment_name(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(env, value)
    assert getattr(StorageSettings(), field) == expected


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
        ("R2_ACCESS_KEY_ID", "r2_access_key_id"),
        ("PM_R2_ACCESS_KEY_ID", "r2_access_key_id"),
        ("R2_SECRET_ACCESS_KEY", "r2_secret_access_key"),
        ("PM_R2_SECRET_ACCESS_KEY", "r2_secret_access_key"),
    ],
)
def test_credentials_are_secrets(monkeypatch: pytest.MonkeyPatch, env: str, field: str) -> None:
    monkeypatch.setenv(env, SECRET)
    settings = StorageSettings()
    assert getattr(settings, field).get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())


def test_defaults() -> None:
    settings = StorageSettings()
    assert settings.backend == "aws"
    assert settings.bucket_name is None
    assert settings.prefix == ""
    assert settings.presigned_url_expires == 3600
    assert settings.retry_mode == "standard"
    assert 1 < settings.max_attempts <= 10
    assert settings.credentials() is None  # boto3's own chain


@pytest.mark.parametrize(
    ("value", "backend"),
    [
        ("aws", "aws"),
        ("s3", "aws"),
        ("S3", "aws"),
        ("cloudflare", "cloudflare"),
        ("r2", "cloudflare"),
        (" R2 ", "cloudflare"),
    ],
)
@pytest.mark.parametrize("env", ["STORAGE_BACKEND", "PM_STORAGE_BACKEND"])
def test_backend_aliases(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, backend: str
) -> None:
    monkeypatch.setenv(env, value)
    assert StorageSettings().backend == backend


def test_primary_name_wins_over_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "aws")
    monkeypatch.setenv("PM_STORAGE_BACKEND", "r2")
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "primary")
    monkeypatch.setenv("PM_BUCKET_NAME", "alias")
    settings = StorageSettings()
    assert (settings.backend, settings.bucket_name) == ("aws", "primary")


@pytest.mark.parametrize("env", ["STORAGE_BACKEND", "PM_STORAGE_BACKEND"])
def test_local_backend_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv(env, "local")
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "media")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert env in message
    assert "'local' storage needs no s3w worker" in message
    assert "use aws or cloudflare" in message


def test_unknown_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "gcs")
    with pytest.raises(
        ConfigError, match=r"'gcs' is not a backend: use aws \(or s3\) or cloudflare"
    ):
        load_settings(check=False)


def test_cloudflare_names_every_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "cloudflare")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    for name in ("PM_S3_BUCKET_NAME", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_ACCOUNT_ID"):
        assert f"{name} is not set" in message, message
    assert "AWS_" not in message


def test_cloudflare_complete_with_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "PM_STORAGE_BACKEND": "r2",
        "PM_BUCKET_NAME": "papers",
        "PM_R2_ACCESS_KEY_ID": "key",
        "PM_R2_SECRET_ACCESS_KEY": SECRET,
        "PM_R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.credentials() == ("key", SECRET)
    assert settings.effective_endpoint == (
        "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
    )
    assert settings.effective_region == "auto"
    assert settings.credentials_hint == "R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY"


def test_r2_account_id_must_be_a_host_label(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "STORAGE_BACKEND": "cloudflare",
        "PM_S3_BUCKET_NAME": "papers",
        "R2_ACCESS_KEY_ID": "key",
        "R2_SECRET_ACCESS_KEY": SECRET,
        "R2_ACCOUNT_ID": "evil.example.com/x",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(
        ConfigError, match=re.escape("R2_ACCOUNT_ID='evil.example.com/x' is not an account id")
    ):
        load_settings()


def test_aws_half_a_key_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "papers")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    with pytest.raises(ConfigError, match="AWS_SECRET_ACCESS_KEY is not set"):
        load_settings()


def test_aws_without_keys_uses_the_credential_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "papers")
    assert load_settings().credentials() is None


def test_wrong_and_missing_variables_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "cloudflare")
    monkeypatch.setenv("PM_S3_MAX_ATTEMPTS", "many")
    monkeypatch.setenv("PRESIGNED_URL_EXPIRES", "604801")
    monkeypatch.setenv("PM_R2_SECRET_ACCESS_KEY", SECRET)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("invalid storage configuration:")
    assert "PM_S3_MAX_ATTEMPTS: Input should be a valid integer" in message
    assert "PRESIGNED_URL_EXPIRES: Input should be less than or equal to 604800" in message
    assert "PM_S3_BUCKET_NAME is not set" in message
    assert "R2_ACCESS_KEY_ID is not set" in message
    assert "R2_ACCOUNT_ID is not set" in message
    assert "R2_SECRET_ACCESS_KEY is not set" not in message
    assert SECRET not in message
    assert "many" not in message  # values are not echoed (they could be secrets)


def test_wrong_backend_and_missing_bucket_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_STORAGE_BACKEND", "local")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "PM_STORAGE_BACKEND: 'local' storage" in message
    assert "PM_S3_BUCKET_NAME is not set" in message
    # Which keys are needed depends on the backend, which is unknown: none are demanded.
    assert "ACCESS_KEY" not in message


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"PM_S3_BUCKET_NAME": "Bad_Name"}, "is not a valid bucket name"),
        ({"PM_PREFIX": "/lead"}, "must not start or end with '/'"),
        ({"PM_PREFIX": "trail/"}, "must not start or end with '/'"),
        ({"PM_PREFIX": "a/../b"}, "invalid segment"),
        ({"PM_S3_ENDPOINT_URL": "ftp://x"}, "is not an http(s) URL"),
        ({"PM_S3_ENDPOINT_URL": "https://user:pw@s3.example.org"}, "must not carry credentials"),
        ({"PM_S3_ENDPOINT_URL": "http://s3.example.org"}, "set PM_S3_ALLOW_HTTP=true"),
        ({"PM_S3_ADDRESSING_STYLE": "sideways"}, "PM_S3_ADDRESSING_STYLE"),
        ({"PM_S3_CHECKSUM": "always"}, "PM_S3_CHECKSUM"),
        ({"PM_S3_MAX_ATTEMPTS": "0"}, "PM_S3_MAX_ATTEMPTS"),
        ({"PM_S3_MULTIPART_THRESHOLD": "1024"}, "PM_S3_MULTIPART_THRESHOLD"),
        (
            {
                "PM_S3_MULTIPART_THRESHOLD": str(8 * 2**20),
                "PM_S3_MULTIPART_CHUNKSIZE": str(16 * 2**20),
            },
            "must not exceed PM_S3_MULTIPART_THRESHOLD",
        ),
        ({"PRESIGNED_URL_EXPIRES": "0"}, "PRESIGNED_URL_EXPIRES"),
    ],
)
def test_wrong_values(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "papers")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert problem in str(info.value)
    assert "user:pw" not in str(info.value)


def test_plain_http_allowed_on_loopback_or_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "papers")
    monkeypatch.setenv("PM_S3_ENDPOINT_URL", "http://127.0.0.1:8333")
    assert load_settings().effective_endpoint == "http://127.0.0.1:8333"
    monkeypatch.setenv("PM_S3_ENDPOINT_URL", "http://minio.internal:9000/")
    monkeypatch.setenv("PM_S3_ALLOW_HTTP", "1")
    assert load_settings().effective_endpoint == "http://minio.internal:9000"


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "papers")
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "PM_PREFIX",
        "PM_S3_ADDRESSING_STYLE",
    ):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert settings.credentials() is None
    assert settings.prefix == ""
    assert settings.addressing_style is None


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "first")
    first = get_settings()
    monkeypatch.setenv("PM_S3_BUCKET_NAME", "second")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().bucket_name == "second"


def test_importing_reads_no_environment() -> None:
    """Every module imports cleanly with a broken environment: nothing is read until used."""
    env = {
        **os.environ,
        "STORAGE_BACKEND": "local",
        "PM_S3_MAX_ATTEMPTS": "not-a-number",
        "PM_S3_ENDPOINT_URL": "ftp://nowhere",
    }
    code = (
        "import s3w_storage, s3w_storage.settings, s3w_storage.client, s3w_storage.keys, "
        "s3w_storage.objects, s3w_storage.errors\n"
        "from s3w_storage.settings import load_settings\n"
        "try:\n    load_settings()\nexcept s3w_storage.ConfigError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "STORAGE_BACKEND: 'local' storage" in result.stdout
    assert "PM_S3_MAX_ATTEMPTS" in result.stdout

"""Storage settings from the environment: loaded on first use, cached, clearable."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import cached_property, lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from s3w_storage.archive_settings import ArchiveSettings
from s3w_storage.errors import ConfigError, StorageError, translate
from s3w_storage.profiles import profile_endpoint

MAX_PRESIGN_EXPIRY = 604_800  # seven days: the SigV4 limit

_BACKENDS = {"aws": "aws", "s3": "aws", "cloudflare": "cloudflare", "r2": "cloudflare"}


def _env(*names: str) -> Any:
    return AliasChoices(*names)


class StorageSettings(ArchiveSettings):
    """Every storage setting; the environment names are listed in the README's table.

    Construct it directly to read the environment without checks (``s3w config`` does);
    use :func:`get_settings` to get checked, cached settings.
    """

    # Empty variables (``PM_PREFIX=`` in an env file) count as unset, so an empty key is never
    # sent as a credential.
    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=False, populate_by_name=True, env_ignore_empty=True
    )

    backend: Literal["aws", "cloudflare"] = Field(
        default="aws", validation_alias=_env("STORAGE_BACKEND", "PM_STORAGE_BACKEND")
    )
    bucket_name: str | None = Field(
        default=None, validation_alias=_env("PM_S3_BUCKET_NAME", "PM_BUCKET_NAME")
    )
    prefix: str = Field(default="", validation_alias=_env("PM_PREFIX"))
    media_root: str = Field(default="media", validation_alias=_env("PM_MEDIA_ROOT"))

    aws_access_key_id: SecretStr | None = Field(
        default=None, validation_alias=_env("AWS_ACCESS_KEY_ID")
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None, validation_alias=_env("AWS_SECRET_ACCESS_KEY")
    )
    aws_session_token: SecretStr | None = Field(
        default=None, validation_alias=_env("AWS_SESSION_TOKEN")
    )
    aws_region_name: str | None = Field(
        default=None, validation_alias=_env("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
    )

    r2_access_key_id: SecretStr | None = Field(
        default=None, validation_alias=_env("R2_ACCESS_KEY_ID", "PM_R2_ACCESS_KEY_ID")
    )
    r2_secret_access_key: SecretStr | None = Field(
        default=None, validation_alias=_env("R2_SECRET_ACCESS_KEY", "PM_R2_SECRET_ACCESS_KEY")
    )
    r2_account_id: str | None = Field(
        default=None, validation_alias=_env("R2_ACCOUNT_ID", "PM_R2_ACCOUNT_ID")
    )

    endpoint_url: str | None = Field(
        default=None,
        validation_alias=_env("PM_S3_ENDPOINT_URL", "S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"),
    )
    # Read by boto3 itself too; taken here so that one place decides the endpoint and the
    # plain-http rule applies to it.
    aws_endpoint_url: str | None = Field(default=None, validation_alias=_env("AWS_ENDPOINT_URL"))
    addressing_style: Literal["auto", "path", "virtual"] | None = Field(
        default=None, validation_alias=_env("PM_S3_ADDRESSING_STYLE")
    )
    allow_http: bool = Field(default=False, validation_alias=_env("PM_S3_ALLOW_HTTP"))
    checksum: Literal["auto", "sha256", "crc64nvme", "md5", "when_supported", "when_required"] = (
        Field(default="auto", validation_alias=_env("PM_S3_CHECKSUM"))
    )
    retry_mode: Literal["standard", "adaptive"] = Field(
        default="standard", validation_alias=_env("PM_S3_RETRY_MODE")
    )
    max_attempts: int = Field(default=5, ge=1, le=20, validation_alias=_env("PM_S3_MAX_ATTEMPTS"))
    connect_timeout: float = Field(
        default=5.0, gt=0, le=300, validation_alias=_env("PM_S3_CONNECT_TIMEOUT")
    )
    read_timeout: float = Field(
        default=60.0, gt=0, le=3600, validation_alias=_env("PM_S3_READ_TIMEOUT")
    )
    # Measured with benchmarks/bench_storage.py: small objects are bound by round trips, and
    # 64 requests in flight keep a store busy where 16 left it waiting.
    max_concurrency: int = Field(
        default=64, ge=1, le=256, validation_alias=_env("PM_S3_MAX_CONCURRENCY")
    )
    #: Object bodies held in memory at once by one process, whatever the concurrency.
    max_buffer_mb: int = Field(default=512, ge=16, validation_alias=_env("PM_S3_MAX_BUFFER_MB"))
    # Measured with benchmarks/bench_storage.py: 16 MiB parts keep an S3 server fed better than
    # 64 MiB ones, and files below 32 MiB (most PDFs) go up in a single PUT.
    multipart_threshold: int = Field(
        default=32 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        validation_alias=_env("PM_S3_MULTIPART_THRESHOLD"),
    )
    multipart_chunksize: int = Field(
        default=16 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        validation_alias=_env("PM_S3_MULTIPART_CHUNKSIZE"),
    )
    presigned_url_expires: int = Field(
        default=3600, ge=1, le=MAX_PRESIGN_EXPIRY, validation_alias=_env("PRESIGNED_URL_EXPIRES")
    )

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: object) -> object:
        if isinstance(value, str):
            name = value.strip().lower()
            if name == "local":
                raise ValueError(
                    "'local' storage needs no s3w worker; s3w mirrors media to S3: use aws or cloudflare"
                )
            if name not in _BACKENDS:
                raise ValueError(
                    f"{value!r} is not a backend: use aws (or s3) or cloudflare (or r2)"
                )
            return _BACKENDS[name]
        return value

    @field_validator("prefix", mode="before")
    @classmethod
    def _prefix(cls, value: object) -> object:
        if not isinstance(value, str) or not value:
            return value
        if value.startswith("/") or value.endswith("/"):
            raise ValueError(
                f"{value!r} must not start or end with '/' (Papermerge joins it with one)"
            )
        for part in value.split("/"):
            if part in ("", ".", "..") or "\\" in part or "\x00" in part:
                raise ValueError(f"{value!r} has an empty, '.', '..' or invalid segment")
        return value

    # ---------------------------------------------------------------- derived values

    @property
    def is_aws(self) -> bool:
        return self.backend == "aws" and not self.effective_endpoint

    @property
    def effective_endpoint(self) -> str | None:
        """The endpoint URL every client is given (None = AWS's regional endpoint)."""
        return self.endpoint_and_source[0]

    @property
    def endpoint_source(self) -> str:
        """Where the endpoint came from: an environment name, a profile, or the default."""
        return self.endpoint_and_source[1]

    @cached_property
    def endpoint_and_source(self) -> tuple[str | None, str]:
        """(endpoint, where it came from), in boto3's order of precedence: the endpoint
        variables, ``AWS_ENDPOINT_URL``, the profile's ``endpoint_url``, R2's account."""
        if self.endpoint_url:
            return self.endpoint_url.rstrip("/"), _name_in_use("endpoint_url", "PM_S3_ENDPOINT_URL")
        if self.aws_endpoint_url:
            return self.aws_endpoint_url.rstrip("/"), "AWS_ENDPOINT_URL"
        if self.backend == "cloudflare" and self.r2_account_id:
            return f"https://{self.r2_account_id}.r2.cloudflarestorage.com", "R2_ACCOUNT_ID"
        profile = profile_endpoint()
        if profile:
            return profile[0].rstrip("/"), profile[1]
        return None, "default (AWS regional endpoint)"

    @property
    def effective_region(self) -> str | None:
        if self.backend == "cloudflare":
            return "auto"
        return self.aws_region_name or ("us-east-1" if self.effective_endpoint else None)

    @property
    def checksum_algorithm(self) -> Literal["sha256", "crc64nvme", "md5"]:
        """The checksum every PUT and part carries, which the server verifies: SHA-256 by
        default (AWS, R2, SeaweedFS, MinIO and Ceph check it); ``md5`` (Content-MD5) for a
        store that knows no newer checksum. The older names ``when_supported`` and
        ``when_required`` mean the default."""
        if self.checksum in ("sha256", "crc64nvme", "md5"):
            return self.checksum
        return "sha256"

    @property
    def effective_checksum(self) -> Literal["when_supported"]:
        """botocore's setting: its requests always carry a checksum (CRC32) and its
        responses are verified where the store returns one."""
        return "when_supported"

    @property
    def effective_addressing_style(self) -> Literal["auto", "path", "virtual"]:
        if self.addressing_style:
            return self.addressing_style
        return "path" if self.effective_endpoint else "auto"

    def session_token(self) -> str | None:
        """The session token that goes with the AWS keys (temporary credentials), if any."""
        if self.backend == "cloudflare" or self.aws_session_token is None:
            return None
        return self.aws_session_token.get_secret_value()

    def credentials(self) -> tuple[str, str] | None:
        """(access key id, secret key) for the backend, or None for boto3's own chain."""
        if self.backend == "cloudflare":
            key, secret = self.r2_access_key_id, self.r2_secret_access_key
        else:
            key, secret = self.aws_access_key_id, self.aws_secret_access_key
        if key is None or secret is None:
            return None
        return key.get_secret_value(), secret.get_secret_value()

    @property
    def credentials_hint(self) -> str:
        if self.backend == "cloudflare":
            return "R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY"
        if self.session_token() is not None:
            keys = "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
            return f"{keys} (temporary credentials expire: get new ones)"
        return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"

    def translate(
        self, exc: BaseException, key: str | None = None, *, endpoint: str | None = None
    ) -> StorageError:
        """:func:`~s3w_storage.errors.translate` with this store's bucket, endpoint and
        credentials hint (``endpoint``: the one a request actually used)."""
        where = endpoint or self.effective_endpoint
        hint = self.credentials_hint
        return translate(
            exc, bucket=self.bucket_name, key=key, endpoint=where, credentials_hint=hint
        )

    def problems(self) -> list[str]:
        """Every missing or contradictory variable for the chosen backend, one line each."""
        return self._problems(backend_known=True)

    def _problems(self, *, backend_known: bool) -> list[str]:
        found: list[str] = []
        if not self.bucket_name:
            found.append("PM_S3_BUCKET_NAME is not set (the bucket that holds the media)")
        elif not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", self.bucket_name):
            found.append(
                f"PM_S3_BUCKET_NAME={self.bucket_name!r} is not a valid bucket name "
                "(3-63 lower-case letters, digits, dots and dashes)"
            )
        if not backend_known:
            pass  # the backend itself is wrong: which keys are needed is unknown
        elif self.backend == "cloudflare":
            needed = "required for STORAGE_BACKEND=cloudflare"
            if self.r2_access_key_id is None:
                found.append(f"R2_ACCESS_KEY_ID is not set ({needed})")
            if self.r2_secret_access_key is None:
                found.append(f"R2_SECRET_ACCESS_KEY is not set ({needed})")
            if not self.r2_account_id and not self.endpoint_url:
                found.append(
                    f"R2_ACCOUNT_ID is not set ({needed}, unless PM_S3_ENDPOINT_URL is given)"
                )
            elif self.r2_account_id and not re.fullmatch(
                r"[A-Za-z0-9][A-Za-z0-9-]{0,62}", self.r2_account_id
            ):
                found.append(
                    f"R2_ACCOUNT_ID={self.r2_account_id!r} is not an account id "
                    "(the 32 hex characters shown in the Cloudflare dashboard)"
                )
        elif (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            missing = (
                "AWS_SECRET_ACCESS_KEY"
                if self.aws_secret_access_key is None
                else "AWS_ACCESS_KEY_ID"
            )
            found.append(
                f"{missing} is not set: give both AWS keys, or neither to use boto3's credential chain"
            )
        endpoint, source = self.endpoint_and_source
        if endpoint and source != "R2_ACCOUNT_ID":
            found.extend(_endpoint_problems(endpoint, self.allow_http, source))
        if self.multipart_chunksize > self.multipart_threshold:
            found.append("PM_S3_MULTIPART_CHUNKSIZE must not exceed PM_S3_MULTIPART_THRESHOLD")
        found.extend(self.archive_problems())
        return found


def _endpoint_problems(url: str, allow_http: bool, source: str = "PM_S3_ENDPOINT_URL") -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{source}={url!r} is not an http(s) URL"]
    if parts.username or parts.password:
        return [f"{source} must not carry credentials; use the key variables"]
    if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        return [
            f"{source} uses plain http to {parts.hostname}: use https, "
            "or set PM_S3_ALLOW_HTTP=true for a trusted network"
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Every accepted environment name (lower case) -> the field it sets.
_FIELD_FOR_ENV: dict[str, str] = {
    str(choice).lower(): name
    for name, info in StorageSettings.model_fields.items()
    for choice in getattr(info.validation_alias, "choices", [name])
}


def load_settings(*, check: bool = True) -> StorageSettings:
    """Read the environment now.

    Raises one :class:`ConfigError` that lists every wrong variable (a value that does not
    parse) and, with ``check``, every missing or contradictory one for the chosen backend.
    """
    wrong: list[str] = []
    try:
        settings = StorageSettings()
    except ValidationError as exc:
        defaults: dict[str, Any] = {}
        for error in exc.errors():
            loc = str(error["loc"][0]) if error["loc"] else "?"
            field = _FIELD_FOR_ENV.get(loc.lower(), loc)
            message = error["msg"].removeprefix("Value error, ")
            wrong.append(f"{_name_in_use(field, loc)}: {message}")
            if field in StorageSettings.model_fields:
                defaults[field] = StorageSettings.model_fields[field].default
        if not check:
            raise ConfigError(_report(wrong, [])) from None
        # Read the rest again with the wrong values set aside, so that the missing ones are
        # reported in the same error.
        try:
            rest = StorageSettings(**defaults)._problems(backend_known="backend" not in defaults)
        except ValidationError:  # a value that could not be set aside; report what we have
            rest = []
        raise ConfigError(_report(wrong, rest)) from None
    if check:
        found = settings.problems()
        if found:
            raise ConfigError(_report([], found))
    return settings


def _name_in_use(field: str, fallback: str) -> str:
    """The environment name that set ``field``: the first of its names that is set."""
    present = {name.upper() for name in os.environ}
    names = [env.upper() for env, owner in _FIELD_FOR_ENV.items() if owner == field]
    return next((name for name in names if name in present), fallback.upper())


def _report(wrong: list[str], missing: list[str]) -> str:
    kind = "invalid" if wrong else "incomplete"
    return f"{kind} storage configuration:\n  " + "\n  ".join(wrong + missing)


@lru_cache(maxsize=1)
def get_settings() -> StorageSettings:
    """Checked settings, read from the environment on first call; ``cache_clear()`` resets."""
    return load_settings(check=True)

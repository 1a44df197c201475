"""The data plane's connection to one bucket: the obstore store built from the settings,
the boto3 client for the rare control-plane calls, and obstore errors in the storage
hierarchy."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from s3w_storage import protection
from s3w_storage.budget import budget_for
from s3w_storage.connection import connection_for
from s3w_storage.errors import (
    AccessDenied,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
)

if TYPE_CHECKING:
    from obstore.store import S3Store

    from s3w_storage.settings import StorageSettings

_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")
_STATUS = re.compile(r"status code: (\d{3})")


class BucketStore:
    """One bucket reached through obstore (keys are full keys unless a method says
    otherwise); thread-safe, cheap to pickle for worker processes (rebuilt there)."""

    def __init__(self, settings: StorageSettings, *, concurrency: int | None = None) -> None:
        self.settings = settings
        self.way = connection_for(settings)
        self.bucket = settings.bucket_name or ""
        self.head = settings.prefix + "/" if settings.prefix else ""
        self.algorithm = settings.checksum_algorithm
        self.concurrency = concurrency or settings.max_concurrency
        self.buffers = budget_for(settings.max_buffer_mb << 20)
        self.endpoint = self.way.url
        self.store = self._build()

    @property
    def parts_in_flight(self) -> int:
        """Parts of one object sent or fetched at once."""
        return max(1, min(self.concurrency, 8))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["store"]
        state.pop("_client", None)  # clients are per process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.store = self._build()

    def _build(self) -> S3Store:
        from datetime import timedelta

        from obstore.store import S3Store

        way, settings = self.way, self.settings
        config: dict[str, Any] = {
            "region": way.region,
            "virtual_hosted_style_request": way.virtual_hosted,
            # The checksum header protects the body; hashing it again for the signature
            # would only double the CPU.
            "unsigned_payload": self.algorithm != "md5",
        }
        if way.endpoint:
            endpoint = way.endpoint
            if way.virtual_hosted:  # object_store wants the bucket in a virtual-hosted URL
                scheme, _, host = endpoint.partition("://")
                endpoint = f"{scheme}://{self.bucket}.{host}"
            config["endpoint"] = endpoint
        if self.algorithm in ("sha256", "crc64nvme"):
            config["checksum_algorithm"] = self.algorithm
        config.update(protection.store_config(settings))  # SSE-S3, SSE-KMS, SSE-C
        options: dict[str, Any] = {
            "allow_http": way.allow_http,
            "connect_timeout": timedelta(seconds=way.connect_timeout),
            "read_timeout": timedelta(seconds=way.read_timeout),
            "pool_max_idle_per_host": str(self.concurrency + 4),
            "user_agent": "s3w",
        }
        if way.proxy:
            options["proxy_url"] = way.proxy
            if way.no_proxy:
                options["proxy_excludes"] = way.no_proxy
        if way.ca_bundle:
            with open(way.ca_bundle, "rb") as handle:
                options["root_certificate"] = handle.read()
        retry = {
            "max_retries": way.max_attempts - 1,
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=15),
                "base": 2,
            },
            "retry_timeout": timedelta(seconds=max(60.0, way.read_timeout * 2)),
        }
        keys = settings.credentials()
        provider = None
        if keys is not None:
            config["access_key_id"], config["secret_access_key"] = keys
            token = settings.session_token()
            if token:
                config["token"] = token
        else:
            import boto3
            from obstore.auth.boto3 import Boto3CredentialProvider

            provider = Boto3CredentialProvider(boto3.session.Session())
        return S3Store(
            self.bucket,
            config=config,  # type: ignore[arg-type]
            client_options=options,  # type: ignore[arg-type]
            retry_config=retry,  # type: ignore[arg-type]
            credential_provider=provider,
        )

    # ------------------------------------------------------------------ errors

    def error(self, exc: BaseException, key: str | None, operation: str) -> StorageError:
        """The storage error for an obstore exception (message without secrets)."""
        import obstore.exceptions as oe
        from botocore.exceptions import ClientError

        if isinstance(exc, StorageError):
            return exc
        text = str(exc)
        if isinstance(exc, oe.InvalidPathError):
            return StorageError(f"{key}: not a usable key ({_first_line(text)})")
        if isinstance(exc, oe.NotFoundError):
            code, status = "NoSuchKey", 404
        elif isinstance(exc, oe.PermissionDeniedError | oe.UnauthenticatedError):
            code, status = _match(_CODE, text) or "AccessDenied", 403
        else:
            found = _STATUS.search(text)
            if found is None:
                return StorageUnavailable(_unreachable(text, self.endpoint, operation, key))
            status, code = int(found.group(1)), _match(_CODE, text) or found.group(1)
        parsed: Any = {
            "Error": {"Code": code, "Message": _match(_MESSAGE, text)},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return self.settings.translate(ClientError(parsed, operation), key, endpoint=self.endpoint)

    def control(self) -> Any:
        """The boto3 client for the rare control-plane calls, built on first use."""
        from s3w_storage.client import make_client

        client = self.__dict__.get("_client")
        if client is None:
            client = make_client(self.settings, pool_size=self.concurrency + 4)
            self.__dict__["_client"] = client
        return client


def _unreachable(text: str, endpoint: str, operation: str, key: str | None) -> str:
    """One line on why a request got no (whole) answer, in the words botocore's are given."""
    where = f"{key} in {operation}" if key else operation
    lowered = text.lower().replace("retry_timeout", "")
    if "timed out" in lowered or "timeout" in lowered:
        return (
            f"{endpoint} did not answer for {where} within the read timeout "
            "(PM_S3_READ_TIMEOUT); it may succeed if retried"
        )
    if any(w in lowered for w in ("connection refused", "dns error", "tcp connect error")):
        return f"cannot reach {endpoint} for {where}: check PM_S3_ENDPOINT_URL and the network"
    return f"{endpoint} did not answer in full for {where}; it may succeed if retried"


def _match(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    return found.group(1) if found else ""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def observed_status(error: StorageError) -> int | None:
    """The HTTP status a translated error stands for, for the request observer (None: no
    answer, or one the translation does not say)."""
    if isinstance(error, ObjectNotFound):
        return 404
    if isinstance(error, AccessDenied):
        return 403
    return None

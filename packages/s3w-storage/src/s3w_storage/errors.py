"""The storage error hierarchy and the one function that translates botocore errors into it.

botocore is imported only when an error is translated, so that ``import s3w_storage`` (and
``from s3w_storage import ConfigError`` in a CLI) stays cheap.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error s3w-storage raises; the message says what to do about it."""

    #: True when the same call may succeed if tried again later (throttling, 5xx, network).
    transient: bool = False


class ConfigError(StorageError):
    """The configuration is missing or wrong; the message names every variable at fault."""


class InvalidKey(StorageError, ValueError):
    """A key or media-relative path that is empty, absolute or would escape its root."""


class InvalidArgument(StorageError, ValueError):
    """An argument outside its allowed range (for example a presigned URL expiry)."""


class ObjectNotFound(StorageError):
    """No object at the key."""


class BucketNotFound(StorageError):
    """The configured bucket does not exist at the endpoint."""


class AccessDenied(StorageError):
    """The server refused the credentials or the operation."""


class StorageUnavailable(StorageError):
    """The endpoint cannot be reached, timed out, throttled or failed on its side."""

    transient = True


_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_NO_BUCKET = {"NoSuchBucket"}
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
}
_DENIED = {"403", "AccessDenied", "AllAccessDisabled", "Forbidden"}
_TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
    "502",
    "504",
    "RequestLimitExceeded",
    "TooManyRequests",
    "429",
}


def _where(bucket: str | None, key: str | None) -> str:
    if key and bucket:
        return f"{key} in bucket {bucket}"
    if bucket:
        return f"bucket {bucket}"
    return "the bucket"


def translate(
    exc: BaseException,
    *,
    bucket: str | None = None,
    key: str | None = None,
    endpoint: str | None = None,
    credentials_hint: str = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
) -> StorageError:
    """Map a botocore exception to the hierarchy, with a message a person can act on.

    The result is meant to be raised ``from exc`` so the original stays in ``__cause__``.
    Messages never contain credentials or signed URLs.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, StorageError):
        return exc
    inner = _unwrap(exc)
    if inner is not exc:
        return translate(
            inner, bucket=bucket, key=key, endpoint=endpoint, credentials_hint=credentials_hint
        )
    where = _where(bucket, key)
    place = endpoint or "the S3 endpoint"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        operation = exc.operation_name
        if code in _NO_BUCKET:
            return BucketNotFound(
                f"bucket {bucket or '?'} does not exist at {place}: create it, or fix PM_S3_BUCKET_NAME"
            )
        if (code in _NOT_FOUND or status == 404) and (not key or operation == "HeadBucket"):
            # HEAD has no body to say NoSuchBucket: a 404 without a key is the bucket.
            return BucketNotFound(
                f"bucket {bucket or '?'} does not exist at {place}: create it, or fix PM_S3_BUCKET_NAME"
            )
        if code in _NOT_FOUND or status == 404:
            return ObjectNotFound(
                f"no object at {key} in {bucket}" if key else f"not found: {where}"
            )
        if code in _BAD_CREDENTIALS:
            return AccessDenied(
                f"{place} rejected the credentials ({code}) for {operation}: check {credentials_hint}"
            )
        if code in _DENIED or status == 403:
            return AccessDenied(
                f"access denied to {where} for {operation}: grant these credentials that "
                f"permission (or check {credentials_hint})"
            )
        if code in _TRANSIENT or (isinstance(status, int) and status >= 500):
            return StorageUnavailable(
                f"{place} failed {operation} on {where} ({code or status}); it may succeed if retried"
            )
        return StorageError(
            f"{operation} on {where} failed: {code or status}: {error.get('Message', '')}"
        )
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return StorageUnavailable(
            f"cannot reach {place}: check PM_S3_ENDPOINT_URL (or the region) and the network"
        )
    if isinstance(exc, ReadTimeoutError):
        return StorageUnavailable(
            f"{place} did not answer for {where} within the read timeout "
            "(PM_S3_READ_TIMEOUT); it may succeed if retried"
        )
    if isinstance(exc, HTTPClientError):  # connections reset or closed mid-answer
        return StorageUnavailable(
            f"{place} did not answer in full for {where}; it may succeed if retried"
        )
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ConfigError(f"no usable S3 credentials: set {credentials_hint}")
    if isinstance(exc, BotoCoreError):
        return StorageError(f"S3 request on {where} failed: {exc}")
    return StorageError(f"S3 request on {where} failed: {type(exc).__name__}")


def _unwrap(exc: BaseException) -> BaseException:
    """The botocore error inside boto3's transfer wrappers, which carry only a string."""
    from boto3.exceptions import RetriesExceededError, S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, RetriesExceededError):
        last = getattr(exc, "last_exception", None)  # set by boto3, absent from its stubs
        if isinstance(last, BaseException):
            return last
    if isinstance(exc, S3UploadFailedError) and isinstance(
        exc.__context__, (ClientError, BotoCoreError)
    ):
        return exc.__context__
    return exc


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the call that raised ``exc`` may succeed."""
    if isinstance(exc, StorageError):
        return exc.transient
    return translate(exc).transient

"""Object lock as a bucket holds it: whether its versioning and lock configuration fit the
archive settings, and how long a lock keeps one object."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from s3w_storage.errors import ConfigError

if TYPE_CHECKING:
    from s3w_storage.objects import Storage

#: What to do when a bucket must hold retained objects and cannot.
CREATE_LOCKED = (
    "create the target bucket with object lock (aws s3api create-bucket "
    "--object-lock-enabled-for-bucket) and migrate into it"
)
_CREATE = (
    "create a bucket with object lock (it turns versioning on; "
    "aws s3api create-bucket --object-lock-enabled-for-bucket) and s3w migrate into it"
)

#: Answers meaning "no object lock here": none configured, or a provider without the API.
_NO_LOCK = ("ObjectLockConfigurationNotFoundError", "NotImplemented", "MethodNotAllowed")


def versioning(storage: Storage) -> str:
    """The bucket's versioning: ``Enabled``, ``Suspended`` or ``never enabled``."""
    try:
        answer = storage.client.get_bucket_versioning(Bucket=storage.bucket)
    except (ClientError, BotoCoreError) as exc:
        raise storage.error(exc, None) from exc
    return str(answer.get("Status") or "never enabled")


def object_lock(storage: Storage) -> bool:
    """Whether the bucket was created with object lock (a provider without the API has none)."""
    try:
        answer = storage.client.get_object_lock_configuration(Bucket=storage.bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NO_LOCK:
            return False
        raise storage.error(exc, None) from exc
    except BotoCoreError as exc:
        raise storage.error(exc, None) from exc
    return answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"


def check_versioning(storage: Storage) -> str:
    """One line on versioning; raises ConfigError when object lock is set and it is off."""
    state = versioning(storage)
    if storage.settings.object_lock_mode is None:
        return f"bucket {storage.bucket}: versioning {state} (PM_S3_OBJECT_LOCK_MODE unset)"
    if state != "Enabled":
        raise ConfigError(
            f"bucket {storage.bucket}: versioning {state}, but PM_S3_OBJECT_LOCK_MODE="
            f"{storage.settings.object_lock_mode} needs it: {_CREATE}"
        )
    return f"bucket {storage.bucket}: versioning Enabled, as object lock needs"


def check_object_lock(storage: Storage) -> str:
    """One line on object lock; raises ConfigError when the settings ask for a lock the
    bucket cannot hold."""
    settings = storage.settings
    enabled = object_lock(storage)
    if settings.object_lock_mode is None:
        state = "has object lock" if enabled else "has no object lock"
        return f"bucket {storage.bucket} {state}; s3w locks nothing (PM_S3_OBJECT_LOCK_MODE unset)"
    if not enabled:
        raise ConfigError(
            f"bucket {storage.bucket} has no object lock, but PM_S3_OBJECT_LOCK_MODE="
            f"{settings.object_lock_mode}: every document version upload would be refused; "
            f"{_CREATE}, or unset PM_S3_OBJECT_LOCK_MODE"
        )
    return (
        f"bucket {storage.bucket} has object lock: document versions are kept "
        f"{settings.retention_days} days ({settings.object_lock_mode})"
    )


def retained_until(storage: Storage, key: str, now: datetime | None = None) -> datetime | None:
    """The date until which an object lock keeps the object at ``key`` (relative to the
    prefix) from being deleted, or None: no lock, a lock that has ended, or no object."""
    try:
        answer = storage.client.head_object(Bucket=storage.bucket, Key=storage.full_key(key))
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise storage.error(exc, key) from exc
    except BotoCoreError as exc:
        raise storage.error(exc, key) from exc
    until = answer.get("ObjectLockRetainUntilDate")
    if until is None or answer.get("ObjectLockMode") is None:
        return None
    return until if until > (now or datetime.now(UTC)) else None

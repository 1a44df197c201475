"""Encryption, storage class and retention across a migration: the target's settings apply
to every copy, a document version keeps the rest of its source retention (or the reason it
cannot is given), and ``--verify`` checks all three on the target."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from s3w_storage.errors import StorageError
from s3w_storage.lockcheck import object_lock
from s3w_storage.migrate.compare import Difference
from s3w_storage.protection import is_docver, sse_c_params, storage_class_for

if TYPE_CHECKING:
    from s3w_storage.objects import Storage


def copy_source_params(source: Storage) -> dict[str, Any]:
    """What a server-side copy needs to read an SSE-C source (its customer key)."""
    key = source.settings.sse_c_key
    return sse_c_params(key.get_secret_value(), "CopySourceSSECustomer") if key else {}


def _lock(storage: Storage, key: str) -> tuple[str | None, datetime | None, dict[str, Any]]:
    """(lock mode, retain-until, the HEAD answer) of the object at relative ``key``."""
    try:
        answer: dict[str, Any] = dict(
            storage.client.head_object(Bucket=storage.bucket, Key=storage.full_key(key))
        )
    except (ClientError, BotoCoreError) as exc:
        raise storage.error(exc, key) from exc
    return answer.get("ObjectLockMode"), answer.get("ObjectLockRetainUntilDate"), answer


class KeptRetention:
    """After each copy of a document version whose source is still retained, the target's
    copy is retained at least as long (``PutObjectRetention`` extends it); a target bucket
    without object lock makes that copy fail with the reason, every run, until it has one."""

    def __init__(self, source: Storage, target: Storage) -> None:
        self.source, self.target = source, target
        self.active = (
            source.settings.object_lock_mode is not None
            or target.settings.object_lock_mode is not None
        )
        self._target_locks: bool | None = None

    def target_locks(self) -> bool:
        if self._target_locks is None:
            self._target_locks = object_lock(self.target)
        return self._target_locks

    def after_copy(self, key: str) -> None:
        """Raise StorageError when the source's retention of ``key`` cannot be kept."""
        if not self.active or not is_docver(self.source.settings, self.source.full_key(key)):
            return
        mode, until, _ = _lock(self.source, key)
        if mode is None or until is None or until <= datetime.now(UTC):
            return
        if not self.target_locks():
            raise StorageError(
                f"{key}: retained until {until.isoformat(timespec='seconds')} at the source, "
                f"but bucket {self.target.bucket} has no object lock: its copy is not retained "
                "(create the target bucket with object lock)"
            )
        _mode, kept, _ = _lock(self.target, key)
        if kept is not None and kept >= until:
            return
        retention: Any = {"Mode": mode, "RetainUntilDate": until}
        try:
            self.target.client.put_object_retention(
                Bucket=self.target.bucket, Key=self.target.full_key(key), Retention=retention
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.target.error(exc, key) from exc


def check_protection(
    source: Storage, target: Storage, keys: Iterable[str], *, jobs: int
) -> list[Difference]:
    """Every object on both sides whose target copy lacks the target's encryption or
    storage class, or (a document version) retention as long as the source's."""
    settings = target.settings
    wanted_sse = settings.sse if settings.sse != "none" else None
    locking = source.settings.object_lock_mode is not None or settings.object_lock_mode is not None
    classes = settings.storage_class or settings.docvers_storage_class
    if not (wanted_sse or settings.sse_c_key or classes or locking):
        return []

    def one(key: str) -> Difference | None:
        try:
            _mode, kept, answer = _lock(target, key)
            found: list[str] = []
            if wanted_sse and answer.get("ServerSideEncryption") != wanted_sse:
                found.append(f"encryption {answer.get('ServerSideEncryption')} != {wanted_sse}")
            if settings.sse_c_key and answer.get("SSECustomerAlgorithm") != "AES256":
                found.append("not encrypted with the customer key (SSE-C)")
            klass = storage_class_for(settings, target.full_key(key))
            if klass and answer.get("StorageClass", "STANDARD") != klass:
                found.append(f"storage class {answer.get('StorageClass', 'STANDARD')} != {klass}")
            if locking and is_docver(source.settings, source.full_key(key)):
                _src_mode, until, _ = _lock(source, key)
                short = until is not None and until > datetime.now(UTC)
                if short and until is not None and (kept is None or kept < until):
                    shown = kept.isoformat(timespec="seconds") if kept else "none"
                    found.append(f"retained until {shown} != {until.isoformat(timespec='seconds')}")
        except StorageError as exc:
            return Difference(key, str(exc))
        return Difference(key, "; ".join(found)) if found else None

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="s3w-lock") as pool:
        return [d for d in pool.map(one, sorted(keys)) if d is not None]

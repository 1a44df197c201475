"""Encryption, storage class and retention across a migration: the target's settings apply
to every copy, a document version keeps the rest of its source retention (or the reason it
cannot is given), and ``--verify`` checks all three on the target."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from s3w_storage.errors import ConfigError, InvalidKey, StorageError
from s3w_storage.lockcheck import CREATE_LOCKED, object_lock
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


def _retained_until(storage: Storage, key: str) -> datetime | None:
    """When the object at relative ``key`` stops being retained (None: it is not now)."""
    mode, until, _ = _lock(storage, key)
    return until if mode is not None and until is not None and until > datetime.now(UTC) else None


def _docvers(storage: Storage, keys: Iterable[str]) -> Iterator[str]:
    """The document versions among ``keys`` (an invalid key is left to the plan to report)."""
    for key in keys:
        try:
            full = storage.full_key(key)
        except InvalidKey:
            continue
        if is_docver(storage.settings, full):
            yield key


def refuse_unprotected(source: Storage, target: Storage, keys: Iterable[str], *, jobs: int) -> None:
    """Raise ConfigError, before anything is copied, when the target bucket has no object
    lock but the target's settings ask for a lock mode or a source document version is
    still retained: nothing copied there could be protected. The listing says nothing of
    retention, so where the source bucket has object lock and the target none, source
    document versions are HEADed (``jobs`` at a time) until the first retained one; in
    every other case this costs at most one request per bucket."""
    docvers = sorted(_docvers(source, keys))
    wanted = target.settings.object_lock_mode
    if not docvers or (wanted is None and not object_lock(source)) or object_lock(target):
        return
    if wanted is not None:
        raise ConfigError(
            f"bucket {target.bucket} has no object lock, but the target's "
            f"PM_S3_OBJECT_LOCK_MODE={wanted}: no document version copied there could be "
            f"retained, so nothing was copied; {CREATE_LOCKED}, or unset "
            "PM_S3_OBJECT_LOCK_MODE in the target's settings"
        )

    def retained(key: str) -> tuple[str, datetime] | None:
        until = _retained_until(source, key)
        return None if until is None else (key, until)

    window = max(1, jobs) * 4
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="s3w-lock") as pool:
        for start in range(0, len(docvers), window):
            for found in pool.map(retained, docvers[start : start + window]):
                if found is None:
                    continue
                key, until = found
                raise ConfigError(
                    f"bucket {target.bucket} has no object lock, but {key} is retained until "
                    f"{until.isoformat(timespec='seconds')} at the source (others may be too): "
                    f"its copy could not be retained, so nothing was copied; {CREATE_LOCKED}, "
                    "or migrate once the source's retention has ended"
                )


class KeptRetention:
    """After each copy of a document version whose source is still retained, the target's
    copy is retained at least as long (``PutObjectRetention`` extends it). A target bucket
    without object lock is refused before copying (:func:`refuse_unprotected`); should one
    still be met here, that copy fails with the reason."""

    def __init__(self, source: Storage, target: Storage) -> None:
        self.source, self.target = source, target
        self._active: bool | None = None
        self._target_locks: bool | None = None

    @property
    def active(self) -> bool:
        """Whether either side's settings ask for a lock or the source bucket has one."""
        if self._active is None:
            self._active = (
                self.source.settings.object_lock_mode is not None
                or self.target.settings.object_lock_mode is not None
                or object_lock(self.source)
            )
        return self._active

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
    locking = KeptRetention(source, target).active
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

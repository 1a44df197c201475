"""Object operations on one bucket under one prefix: upload, download, head, list, delete, presign.

Every method takes keys relative to the prefix (the strings from :mod:`s3w_storage.keys`)
and raises only :class:`~s3w_storage.errors.StorageError` subclasses.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from s3w_storage.dataplane import key_problem
from s3w_storage.errors import InvalidArgument, InvalidKey, StorageError
from s3w_storage.folders import RemoteObject, list_folder, server_time
from s3w_storage.keys import check_relative, content_type_for, with_prefix
from s3w_storage.perprocess import PerProcess
from s3w_storage.settings import MAX_PRESIGN_EXPIRY

if TYPE_CHECKING:
    from s3w_storage.client import S3Client
    from s3w_storage.dataplane import DataPlane
    from s3w_storage.settings import StorageSettings

DELETE_BATCH = 1000  # the S3 DeleteObjects limit

T = TypeVar("T")


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or HEAD says about one object; ``key`` is relative to the prefix."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_multipart(self) -> bool:
        """A multipart ETag ("<md5>-<parts>") is not the MD5 of the content."""
        return "-" in self.etag


@dataclass
class DeleteResult:
    """Outcome of a batched delete: how many keys were deleted and which ones failed."""

    deleted: int = 0
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (key, code, message)

    def raise_for_errors(self) -> None:
        if self.errors:
            key, code, message = self.errors[0]
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            raise StorageError(f"could not delete {key}: {code} {message}{more}")


class Storage:
    """One bucket and prefix; its boto3 client is given, or ``build`` makes it on first use."""

    def __init__(
        self,
        client: S3Client | None,
        settings: StorageSettings,
        *,
        build: Callable[[], S3Client] | None = None,
    ) -> None:
        if not settings.bucket_name:
            raise InvalidArgument("no bucket configured: set PM_S3_BUCKET_NAME")
        if client is None and build is None:
            raise TypeError("Storage needs a client or a function that builds one")
        self._client, self._build, self._lock = client, build, threading.Lock()
        self.settings = settings
        self.bucket: str = settings.bucket_name
        self.prefix: str = settings.prefix

    @property
    def client(self) -> S3Client:
        """The boto3 client (control-plane calls, presigning), built on first use."""
        if self._client is None:  # the lock only until the client exists
            with self._lock:
                if self._client is None and self._build is not None:
                    self._client = self._build()
        return self._client  # type: ignore[return-value]  # one of the two was given

    @classmethod
    def for_settings(cls, settings: StorageSettings) -> Storage:
        """A Storage with a new client of its own for ``settings`` (another bucket or
        endpoint than the process's)."""
        from s3w_storage.client import make_client

        return cls(None, settings, build=lambda: make_client(settings))

    # ------------------------------------------------------------------ helpers

    def full_key(self, key: str) -> str:
        """The bucket key for a relative ``key`` (prefix applied, traversal refused)."""
        return with_prefix(self.prefix, check_relative(key))

    def relative_key(self, full_key: str) -> str:
        if not self.prefix:
            return full_key
        head = self.prefix + "/"
        if not full_key.startswith(head):
            raise InvalidKey(f"{full_key!r} is outside the prefix {self.prefix!r}")
        return full_key[len(head) :]

    def error(self, exc: BaseException, key: str | None) -> StorageError:
        """The storage error for a botocore/boto3 exception on ``key`` in this bucket."""
        return self.settings.translate(exc, key)

    def _call(self, func: Callable[[], T], key: str | None = None) -> T:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return func()
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            raise self.error(exc, key) from exc

    # ------------------------------------------------------------------ writes

    @cached_property
    def data(self) -> DataPlane:
        """The data plane (every bulk byte) for this bucket, built on first use."""
        from s3w_storage.dataplane import DataPlane

        return DataPlane(self.settings)

    def upload_file(
        self,
        path: str | os.PathLike[str],
        key: str,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Upload a local file with its checksum: one PUT below the multipart threshold,
        parts above. A file that changes while it is read is not stored."""
        full = self.full_key(key)
        problem = key_problem(key)
        if problem is not None:
            raise InvalidKey(problem)
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # opening a FIFO would block until a writer came
            raise InvalidArgument(f"{os.fspath(path)} is not a regular file; nothing uploaded")
        try:
            self.data.put_file(full, os.fspath(path), metadata=metadata, content_type=content_type)
        except OSError as exc:
            raise StorageError(f"cannot read {os.fspath(path)}: {exc.strerror}") from exc

    def upload_bytes(
        self,
        data: bytes,
        key: str,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Upload bytes held in memory as one object, with its checksum."""
        full = self.full_key(key)
        problem = key_problem(key)
        if problem is not None:
            raise InvalidKey(problem)
        attributes = dict(metadata or {})
        attributes["Content-Type"] = content_type or content_type_for(key)
        self.data.put_bytes(full, data, attributes)

    # ------------------------------------------------------------------ reads

    def download_file(self, key: str, dest: str | os.PathLike[str]) -> Path:
        """Download to ``dest`` atomically: a temporary file beside it, renamed when complete."""
        from s3w_storage.files import replacing

        full = self.full_key(key)
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as fd:  # read back to verify
            self.data.download(full, fd)
        return target

    def get_bytes(self, key: str) -> bytes:
        """The whole object in memory (for small objects only)."""
        data, _headers = self.data.get(self.full_key(key))
        return data

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size, ETag and metadata, or None when there is no object at ``key``.

        Only a 404 means absent: a 403 raises :class:`~s3w_storage.errors.AccessDenied`.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        full = self.full_key(key)
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=full)
        except (ClientError, BotoCoreError) as exc:
            answer = exc.response if isinstance(exc, ClientError) else {}
            status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 and answer.get("Error", {}).get("Code") != "NoSuchBucket":
                return None
            raise self.error(exc, key) from exc
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            etag=response.get("ETag", "").strip('"'),
            last_modified=response.get("LastModified"),
            content_type=response.get("ContentType"),
            metadata=response.get("Metadata", {}),
        )

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def iter_objects(
        self, prefix: str = "", *, start_after: str | None = None
    ) -> Iterator[ObjectInfo]:
        """Every object whose relative key starts with ``prefix``, in key order, page by page."""
        if prefix.startswith("/") or any(p in (".", "..") for p in prefix.split("/")):
            raise InvalidKey(f"{prefix!r} is absolute or has a '.' or '..' segment")
        full_prefix = self.prefix + "/" + prefix if self.prefix else prefix
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": full_prefix,
            "PaginationConfig": {"PageSize": 1000},
        }
        if start_after:
            kwargs["StartAfter"] = self.full_key(start_after)
        pages = iter(paginator.paginate(**kwargs))
        while True:
            page = self._call(lambda: next(pages, None), prefix or None)
            if page is None:
                return
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=self.relative_key(item["Key"]),
                    size=int(item["Size"]),
                    etag=item.get("ETag", "").strip('"'),
                    last_modified=item.get("LastModified"),
                )

    # ------------------------------------------------------------------ deletes

    def delete(self, keys: Iterable[str]) -> DeleteResult:
        """Delete keys in batches of 1,000; a key with no object counts as deleted."""
        result = DeleteResult()
        batch: list[str] = []
        for key in keys:
            batch.append(self.full_key(key))
            if len(batch) == DELETE_BATCH:
                self._delete_batch(batch, result)
                batch = []
        if batch:
            self._delete_batch(batch, result)
        return result

    def _delete_batch(self, full_keys: list[str], result: DeleteResult) -> None:
        response = self._call(
            lambda: self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in full_keys], "Quiet": True},
            )
        )
        failed = [
            (
                self.relative_key(error.get("Key", "?")),
                error.get("Code", "?"),
                error.get("Message", ""),
            )
            for error in response.get("Errors", [])
            if error.get("Code") != "NoSuchKey"
        ]
        result.errors.extend(failed)
        result.deleted += len(full_keys) - len(failed)

    def delete_prefix(self, prefix: str) -> DeleteResult:
        """Delete every object under a folder ``prefix`` (it must end in '/'); empty is success."""
        if not prefix.endswith("/"):
            raise InvalidKey(f"{prefix!r} must end with '/' so that it names one folder")
        check_relative(prefix[:-1])
        return self.delete(info.key for info in self.iter_objects(prefix))

    # ------------------------------------------------------------------ presigning

    def _expiry(self, expires: int | None) -> int:
        value = self.settings.presigned_url_expires if expires is None else expires
        if not 1 <= value <= MAX_PRESIGN_EXPIRY:
            raise InvalidArgument(
                f"expiry {value} s is outside 1..{MAX_PRESIGN_EXPIRY} s (SigV4 allows at most seven days)"
            )
        return value

    def presigned_get_url(self, key: str, expires: int | None = None) -> str:
        """A URL anyone can GET the object with until it expires."""
        seconds = self._expiry(expires)
        full = self.full_key(key)
        return self._call(
            lambda: self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=seconds
            ),
            key,
        )

    def presigned_put_url(
        self, key: str, expires: int | None = None, *, content_type: str | None = None
    ) -> str:
        """A URL that accepts one PUT of the object until it expires."""
        seconds = self._expiry(expires)
        full = self.full_key(key)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if content_type:
            params["ContentType"] = content_type
        return self._call(
            lambda: self.client.generate_presigned_url(
                "put_object", Params=params, ExpiresIn=seconds
            ),
            key,
        )

    # ------------------------------------------------------------------ bucket

    def check_bucket(self) -> None:
        """Raise a clear error when the bucket is missing, unreachable or refused."""
        self._call(lambda: self.client.head_bucket(Bucket=self.bucket))

    def create_bucket(self) -> None:
        """Create the bucket; one this account already owns is success."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise self.error(exc, None) from exc
        except BotoCoreError as exc:
            raise self.error(exc, None) from exc

    def upload_many(
        self,
        items: Iterable[tuple[str | os.PathLike[str], str]],
        *,
        jobs: int | None = None,
    ) -> list[tuple[str, StorageError | None]]:
        """Upload (path, key) pairs concurrently through the data plane, each with its
        checksum; returns (key, error or None) for each."""
        workers = jobs or self.settings.max_concurrency
        data = self.data  # a configuration error (a proxy, a CA bundle) is raised here, once

        def one(item: tuple[str | os.PathLike[str], str]) -> tuple[str, StorageError | None]:
            path, key = item
            try:
                self.full_key(key)
                info = os.stat(path)
                if stat.S_ISREG(info.st_mode):
                    _size, problem = data.put(key, os.fspath(path))
                    return key, None if problem is None else StorageError(problem)
                self.upload_file(path, key)
            except StorageError as exc:
                return key, exc
            except OSError as exc:
                return key, StorageError(f"cannot read {os.fspath(path)}: {exc.strerror}")
            return key, None

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, items))

    def list_folder(self, folder: str) -> tuple[list[str], dict[str, RemoteObject]]:
        """(sub-folder prefixes, objects) directly in ``folder``, by one delimiter listing."""
        return self._call(lambda: list_folder(self.client, self.bucket, self.prefix, folder))

    def server_time(self) -> float:
        """The S3 server's clock now (seconds since the epoch), from its Date header."""
        return server_time(self.client, self.bucket)


def _storage_from_environment() -> Storage:
    from s3w_storage.settings import get_settings

    return Storage(None, get_settings(), build=_process_client)


def _process_client() -> S3Client:
    from s3w_storage.client import get_client  # boto3: only when a call needs it

    return get_client()


#: The process's :class:`Storage` from the environment, built on first use.
get_storage: PerProcess[Storage] = PerProcess(_storage_from_environment)

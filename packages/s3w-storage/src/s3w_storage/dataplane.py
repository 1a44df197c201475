"""The data plane: every bulk byte (PUT, multipart, GET, LIST) goes through one maintained
client, obstore (Rust ``object_store``), configured by :func:`~s3w_storage.connection.connection_for`.

Integrity is part of each request: every PUT and every part carries a checksum the server
verifies (``PM_S3_CHECKSUM``: SHA-256 by default, CRC64NVME, or Content-MD5 for a store that
knows neither; a body damaged on the way is refused and sent again), and every GET is
checked against the stored MD5 (the ETag of a single-part object, the part MD5s of a
multipart one, or the MD5 a sync stores in the object's metadata) and read again, then
refused, on a mismatch.

A file is read at most to the size it had when the upload began, and its size and
modification time are compared after the last byte is read: a file that changed meanwhile
is not completed (a multipart upload is aborted), so the object stays the old version or
becomes a whole new one, and the caller is told "changed during upload".
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from queue import Full, Queue
from typing import TYPE_CHECKING, Any

from s3w_storage import observe, protection
from s3w_storage.connection import connection_for
from s3w_storage.errors import (
    AccessDenied,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    translate,
)
from s3w_storage.keys import content_type_for

if TYPE_CHECKING:
    from obstore.store import S3Store

    from s3w_storage.settings import StorageSettings

#: User metadata that holds the whole content's MD5 where the ETag is not one (multipart).
MD5_METADATA = "s3w-md5"
#: A failure whose message starts with this is a file that changed while it was read.
CHANGED = "changed during upload"
_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")
_STATUS = re.compile(r"status code: (\d{3})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ChangedDuringUpload(StorageError):
    """The file changed while it was read; nothing was completed."""


class DataPlane:
    """Bulk object traffic for one bucket (keys are full keys unless a method says
    otherwise); thread-safe, cheap to pickle for worker processes (rebuilt there)."""

    def __init__(self, settings: StorageSettings, *, concurrency: int | None = None) -> None:
        self.settings = settings
        self.way = connection_for(settings)
        self.bucket = settings.bucket_name or ""
        self.head = settings.prefix + "/" if settings.prefix else ""
        self.algorithm = settings.checksum_algorithm
        self.concurrency = concurrency or settings.max_concurrency
        self.endpoint = self.way.url
        self.store = self._build()

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
        return translate(
            ClientError(parsed, operation),
            bucket=self.bucket,
            key=key,
            endpoint=self.endpoint,
            credentials_hint=self.settings.credentials_hint,
        )

    # ------------------------------------------------------------------ writes

    def put(
        self,
        key: str,
        path: str,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> tuple[int, str | None]:
        """Upload the file at ``path`` to ``key`` (relative to the prefix): (bytes sent,
        None) or (0, why the file is not in the bucket). A file that changes while it is
        read yields a message that starts with :data:`CHANGED`."""
        try:
            problem = key_problem(key)
            if problem is not None:
                return 0, problem
            sent = self.put_file(
                self.head + key,
                path,
                metadata=metadata,
                content_type=content_type,
                on_bytes=on_bytes,
            )
            return sent, None
        except ChangedDuringUpload as exc:
            return 0, f"{CHANGED}: {exc} (it is sent again on the next run)"
        except StorageError as exc:
            return 0, str(exc)
        except OSError as exc:
            return 0, f"cannot read {path}: {exc.strerror}"

    def put_file(
        self,
        full: str,
        path: str,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> int:
        """Upload a file to the full key ``full``; returns its size. Raises StorageError
        (:class:`ChangedDuringUpload` when the file changed while read) or OSError."""
        with open(path, "rb", buffering=0) as handle:
            before = os.fstat(handle.fileno())
            size = before.st_size
            attributes = dict(metadata or {})
            attributes["Content-Type"] = content_type or content_type_for(full)
            if size < self.settings.multipart_threshold:
                data = _read_exactly(handle, size, path)
                _check_unchanged(handle, before, path)
                self.put_bytes(full, data, attributes)
                return size
            if MD5_METADATA not in attributes:
                attributes[MD5_METADATA] = _md5_of(handle, size, path)
            handle.seek(0)
            self.abort_stale_uploads(full)
            self._put_parts(full, handle, before, path, attributes, on_bytes)
            return size

    def put_bytes(self, full: str, data: bytes, attributes: Mapping[str, str]) -> None:
        """One PUT of ``data`` with its checksum; a body the server refused as damaged
        (BadDigest, a checksum mismatch) is sent again, up to ``PM_S3_MAX_ATTEMPTS``."""
        import obstore

        attributes = protection.put_attributes(self.settings, full, attributes, data)
        if self.algorithm == "md5" or protection.locks(self.settings, full):
            self._put_md5(full, data, attributes)
            return
        for attempt in range(1, self.way.max_attempts + 1):
            try:
                obstore.put(
                    self.store,
                    full,
                    data,
                    attributes=dict(attributes),
                    use_multipart=False,
                )
                observe.notify("PutObject", 200, len(data))
                return
            except Exception as exc:
                error = self.error(exc, full, "PutObject")
                observe.notify("PutObject", _status(error), len(data))
                if attempt < self.way.max_attempts and _damaged(exc):
                    continue
                raise error from exc

    def _put_md5(self, full: str, data: bytes, attributes: Mapping[str, str]) -> None:
        """A PUT with Content-MD5 (for stores without the newer checksums), through the
        control-plane client: botocore retries a refused body itself."""
        from botocore.exceptions import BotoCoreError, ClientError

        from s3w_storage.client import make_client

        client = self._control(make_client)
        metadata = protection.user_metadata(attributes)
        digest = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=data,
                ContentMD5=digest,
                ContentType=attributes.get("Content-Type", "application/octet-stream"),
                Metadata=metadata,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(
                exc,
                bucket=self.bucket,
                key=full,
                endpoint=self.endpoint,
                credentials_hint=self.settings.credentials_hint,
            ) from exc

    def _control(self, make_client: Any) -> Any:
        """The boto3 client for the rare control-plane calls, built on first use."""
        client = self.__dict__.get("_client")
        if client is None:
            client = make_client(self.settings, pool_size=self.concurrency + 4)
            self.__dict__["_client"] = client
        return client

    def _put_parts(
        self,
        full: str,
        handle: Any,
        before: os.stat_result,
        path: str,
        attributes: Mapping[str, str],
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        """A multipart upload of a file, read up to its starting size; if the file changed,
        the upload is aborted before it completes."""
        chunk = self.settings.multipart_chunksize
        size = before.st_size

        def parts() -> Iterator[bytes]:
            left = size
            while left > 0:
                block = _read_exactly(handle, min(chunk, left), path)
                left -= len(block)
                if left == 0:
                    _check_unchanged(handle, before, path)
                if on_bytes is not None:
                    on_bytes(len(block))
                yield block

        self.put_parts(full, parts(), attributes)

    def abort_stale_uploads(self, full: str) -> int:
        """Abort incomplete multipart uploads of exactly this key: a run that was killed
        (SIGKILL, power loss) could not abort its own, and they would hold their parts'
        storage forever. Best effort: without the permission to list or abort, nothing."""
        from botocore.exceptions import BotoCoreError, ClientError

        from s3w_storage.client import make_client

        client = self._control(make_client)
        aborted = 0
        try:
            listed = client.list_multipart_uploads(Bucket=self.bucket, Prefix=full)
            for upload in listed.get("Uploads", []):
                if upload.get("Key") == full and "UploadId" in upload:
                    client.abort_multipart_upload(
                        Bucket=self.bucket, Key=full, UploadId=upload["UploadId"]
                    )
                    aborted += 1
        except (ClientError, BotoCoreError):
            pass
        return aborted

    def put_parts(self, full: str, blocks: Iterator[bytes], attributes: Mapping[str, str]) -> None:
        """A multipart upload of ``blocks`` (each at most the part size), every part with its
        checksum. An exception raised while the blocks are produced (a StorageError, an
        interrupt) aborts the upload and propagates."""
        import obstore

        attributes = protection.put_attributes(self.settings, full, attributes)
        if self.algorithm == "md5" or protection.locks(self.settings, full):
            self._parts_md5(full, blocks, attributes)
            return
        sizes: list[int] = []

        def counted() -> Iterator[bytes]:
            for block in blocks:
                sizes.append(len(block))
                yield block

        try:
            obstore.put(
                self.store,
                full,
                counted(),
                attributes=dict(attributes),
                use_multipart=True,
                chunk_size=self.settings.multipart_chunksize,
                max_concurrency=max(1, min(self.concurrency, 8)),
            )
        except StorageError:
            raise
        except Exception as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, StorageError):
                raise cause from None
            error = self.error(exc, full, "UploadPart")
            observe.notify("UploadPart", _status(error))
            raise error from exc
        for size in sizes:
            observe.notify("UploadPart", 200, size)

    def _parts_md5(self, full: str, parts: Iterator[bytes], attributes: Mapping[str, str]) -> None:
        """Multipart with a Content-MD5 on every part, through the control-plane client."""
        from botocore.exceptions import BotoCoreError, ClientError

        from s3w_storage.client import make_client

        client = self._control(make_client)
        metadata = protection.user_metadata(attributes)
        content_type = attributes.get("Content-Type", "application/octet-stream")
        upload = None
        try:
            created = client.create_multipart_upload(
                Bucket=self.bucket, Key=full, ContentType=content_type, Metadata=metadata
            )
            upload = created["UploadId"]
            done = []
            for number, block in enumerate(parts, start=1):
                md5 = hashlib.md5(block, usedforsecurity=False).digest()
                answer = client.upload_part(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload,
                    PartNumber=number,
                    Body=block,
                    ContentMD5=base64.b64encode(md5).decode(),
                )
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
            client.complete_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload, MultipartUpload={"Parts": done}
            )
        except BaseException as exc:
            if upload is not None:
                with contextlib.suppress(ClientError, BotoCoreError):
                    client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload)
            if isinstance(exc, ClientError | BotoCoreError):
                raise translate(exc, bucket=self.bucket, key=full, endpoint=self.endpoint) from exc
            raise

    # ------------------------------------------------------------------ reads

    def get(self, full: str) -> tuple[bytes, dict[str, str]]:
        """The whole object and its headers (``Content-Type``, ``ETag``, user metadata as
        ``x-amz-meta-*``), verified against its stored MD5; a body that does not match is
        read once more, then refused."""
        import obstore

        last = ""
        for _attempt in range(2):
            try:
                result = obstore.get(self.store, full)
                data = bytes(result.bytes())
            except Exception as exc:
                error = self.error(exc, full, "GetObject")
                observe.notify("GetObject", _status(error))
                raise error from exc
            observe.notify("GetObject", 200, 0, len(data))
            etag = (result.meta.get("e_tag") or "").strip('"')
            attributes = {str(k): str(v) for k, v in result.attributes.items()}
            wrong = self.mismatch(full, etag, attributes.get(MD5_METADATA), [data])
            if wrong is None:
                return data, _headers(etag, attributes)
            last = wrong
        raise StorageError(f"{full}: {last}; the download was refused")

    def stream(self, full: str) -> tuple[Iterator[bytes], dict[str, str]]:
        """The object's content in pieces of the part size, and its headers (as :meth:`get`);
        the caller verifies the content (it is never whole in memory)."""
        import obstore

        try:
            result = obstore.get(self.store, full)
        except Exception as exc:
            error = self.error(exc, full, "GetObject")
            observe.notify("GetObject", _status(error))
            raise error from exc
        etag = (result.meta.get("e_tag") or "").strip('"')
        headers = _headers(etag, {str(k): str(v) for k, v in result.attributes.items()})

        chunk = self.settings.multipart_chunksize
        # Read on a thread of its own: the pieces may be consumed inside another obstore
        # call (a multipart upload), which cannot drive this stream from its runtime.
        queue: Queue[bytes | BaseException | None] = Queue(maxsize=2)
        stopped = threading.Event()

        def hand(item: bytes | BaseException | None) -> bool:
            while not stopped.is_set():
                try:
                    queue.put(item, timeout=0.5)
                    return True
                except Full:
                    continue
            return False  # the consumer gave up: stop reading

        def produce() -> None:
            pending = bytearray()
            received = 0
            try:
                for piece in result.stream(min_chunk_size=1 << 20):
                    received += len(piece)
                    pending += bytes(piece)
                    while len(pending) >= chunk:
                        if not hand(bytes(pending[:chunk])):
                            return
                        del pending[:chunk]
                if pending and not hand(bytes(pending)):
                    return
                observe.notify("GetObject", 200, 0, received)
                hand(None)
            except Exception as exc:  # noqa: BLE001 - handed to the consumer, translated
                hand(self.error(exc, full, "GetObject"))

        def pieces() -> Iterator[bytes]:
            reader = threading.Thread(target=produce, name="s3w-get", daemon=True)
            reader.start()
            try:
                while (item := queue.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            finally:
                stopped.set()

        return pieces(), headers

    def mismatch(
        self, full: str, etag: str, stored_md5: str | None, blocks: list[bytes] | Any
    ) -> str | None:
        """None when the content (``blocks``, or an open file) matches what the store
        holds for it, else what is wrong."""
        if stored_md5 is None and "-" in etag:
            count = etag.rsplit("-", 1)[1]
            size = _total(blocks)
            part = self._part_size(full, int(count) if count.isdigit() else 0, size)
            if part is None:
                return None  # no MD5 the store can give: nothing to compare with
            digest = _multipart_md5(blocks, part)
            expected = etag
        else:
            digest = _md5(blocks)
            if stored_md5 is None and protection.encrypts_etag(self.settings):
                return None  # written by another tool: the ETag of SSE-KMS/SSE-C is no MD5
            expected = (stored_md5 or etag).lower()
            if not re.fullmatch(r"[0-9a-f]{32}", expected):
                return None  # an ETag that is not an MD5 (SSE-KMS, SSE-C)
        if digest == expected:
            return None
        return f"its content does not match the stored MD5 ({digest} != {expected})"

    def _part_size(self, full: str, count: int, size: int) -> int | None:
        if count <= 0:
            return None
        chunk = self.settings.multipart_chunksize
        if math.ceil(size / chunk) == count:
            return chunk
        try:  # another tool's part size: the first part's length says it
            from s3w_storage.client import make_client

            client = self._control(make_client)
            answer = client.head_object(Bucket=self.bucket, Key=full, PartNumber=1)
            return int(answer["ContentLength"])
        except Exception:  # noqa: BLE001 - best effort: unverifiable stays unverified
            return None

    def download(self, full: str, fd: int) -> tuple[int, str]:
        """Write the object into the open file ``fd`` in parallel ranges, then verify it;
        returns (size, etag). Raises StorageError."""
        from concurrent.futures import ThreadPoolExecutor

        import obstore

        try:
            meta = obstore.head(self.store, full)
        except Exception as exc:
            error = self.error(exc, full, "HeadObject")
            observe.notify("HeadObject", _status(error))
            raise error from exc
        observe.notify("HeadObject", 200)
        size = int(meta["size"])
        etag = (meta.get("e_tag") or "").strip('"')
        chunk = self.settings.multipart_chunksize
        if size <= chunk:
            data, headers = self.get(full)
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            return len(data), headers.get("ETag", "").strip('"')

        def piece(start: int) -> None:
            end = min(size, start + chunk)
            try:
                data = obstore.get_range(self.store, full, start=start, end=end)
            except Exception as exc:
                error = self.error(exc, full, "GetObject")
                observe.notify("GetObject", _status(error))
                raise error from exc
            observe.notify("GetObject", 206, 0, len(data))
            os.pwrite(fd, bytes(data), start)

        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, 8))) as pool:
            list(pool.map(piece, range(0, size, chunk)))
        os.ftruncate(fd, size)
        stored = None
        try:
            stored = obstore.get(self.store, full, options={"head": True}).attributes.get(
                MD5_METADATA
            )
        except Exception:  # noqa: BLE001 - metadata is optional
            stored = None
        wrong = self.mismatch(full, etag, str(stored) if stored else None, _FileBlocks(fd, size))
        if wrong is not None:
            raise StorageError(f"{full}: {wrong}; the download was refused")
        return size, etag

    # ------------------------------------------------------------------ listing

    def listing(
        self, prefix: str, *, start_after: str | None = None
    ) -> Iterator[tuple[str, int, float, str]]:
        """(full key, size, mtime, etag) of every object under the folder ``prefix`` (a
        full key prefix ending in '/', or '') in key order, after ``start_after``."""
        import obstore

        folder = prefix.rstrip("/") or None
        try:
            stream = obstore.list(self.store, folder, offset=start_after, chunk_size=1000)
            for page in stream:
                observe.notify("ListObjectsV2", 200)
                for meta in page:
                    yield (
                        meta["path"],
                        int(meta["size"]),
                        meta["last_modified"].timestamp(),
                        (meta.get("e_tag") or "").strip('"'),
                    )
        except StorageError:
            raise
        except Exception as exc:
            raise self.error(exc, None, "ListObjectsV2") from exc


# ---------------------------------------------------------------------- helpers


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be stored (one line), or None."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        shown = key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        return f"{shown}: the file name is not valid UTF-8; rename it (S3 keys are UTF-8)"
    if _CONTROL.search(key):
        shown = key.encode("unicode_escape").decode("ascii")
        return f"{shown}: the name has a control character; rename the file"
    return None


def _read_exactly(handle: Any, size: int, path: str) -> bytes:
    """``size`` bytes from the open file, never more; fewer means it shrank."""
    data = handle.read(size) if size else b""
    if len(data) != size:
        raise ChangedDuringUpload(f"{path} shrank while it was read")
    return data


def _check_unchanged(handle: Any, before: os.stat_result, path: str) -> None:
    after = os.fstat(handle.fileno())
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise ChangedDuringUpload(f"{path} changed while it was read")


def _md5_of(handle: Any, size: int, path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    left = size
    while left > 0:
        block = handle.read(min(1 << 20, left))
        if not block:
            raise ChangedDuringUpload(f"{path} shrank while it was read")
        digest.update(block)
        left -= len(block)
    return digest.hexdigest()


class _FileBlocks:
    """An open file read back in blocks, for verifying a download."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)


def _total(blocks: Any) -> int:
    return blocks.size if isinstance(blocks, _FileBlocks) else sum(len(b) for b in blocks)


def _ranges(blocks: Any, step: int) -> Iterator[bytes]:
    """The content in pieces of at most ``step`` bytes, each aligned to ``step``."""
    if isinstance(blocks, _FileBlocks):
        for offset in range(0, blocks.size, step):
            yield blocks.read(offset, min(step, blocks.size - offset))
        return
    data = b"".join(blocks) if len(blocks) != 1 else blocks[0]
    view = memoryview(data)
    for offset in range(0, len(data), step):
        yield bytes(view[offset : offset + step])


def _md5(blocks: Any) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for piece in _ranges(blocks, 8 << 20):
        digest.update(piece)
    return digest.hexdigest()


def _multipart_md5(blocks: Any, part: int) -> str:
    """The ETag S3 gives a multipart upload with parts of ``part`` bytes."""
    digests = [hashlib.md5(p, usedforsecurity=False).digest() for p in _ranges(blocks, part)]
    combined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return f"{combined}-{len(digests)}"


def _headers(etag: str, attributes: Mapping[str, str]) -> dict[str, str]:
    known = {
        "Content-Type",
        "Cache-Control",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
    }
    headers = {"ETag": f'"{etag}"'}
    for name, value in attributes.items():
        if name in known:
            headers[name] = value
        elif name != "Storage-Class":
            headers[f"x-amz-meta-{name.lower()}"] = value
    return headers


def _damaged(exc: BaseException) -> bool:
    text = str(exc)
    return any(
        code in text for code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch")
    ) or ("checksum" in text.lower() and "400" in text)


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


def _status(error: StorageError) -> int | None:
    """The HTTP status a translated error stands for, for the request observer (None: no
    answer, or one the translation does not say)."""
    if isinstance(error, ObjectNotFound):
        return 404
    if isinstance(error, AccessDenied):
        return 403
    return None

"""The data plane's writes: one PUT or a multipart upload, every body with its checksum;
a file that changes while it is read is not completed."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from s3w_storage import observe, protection
from s3w_storage.dataplane.store import BucketStore, observed_status
from s3w_storage.errors import StorageError
from s3w_storage.keys import content_type_for
from s3w_storage.protection import MD5_METADATA

if TYPE_CHECKING:
    from datetime import datetime

#: A failure whose message starts with this is a file that changed while it was read.
CHANGED = "changed during upload"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ChangedDuringUpload(StorageError):
    """The file changed while it was read; nothing was completed."""


class Writes(BucketStore):
    """PUTs and multipart uploads."""

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
                with self.buffers.hold(size):
                    data = _read_exactly(handle, size, path)
                    _check_unchanged(handle, before, path)
                    self.put_bytes(full, data, attributes)
                return size
            if MD5_METADATA not in attributes and protection.encrypts_etag(self.settings):
                # The ETag under SSE-KMS or SSE-C is no MD5: the content's MD5 is kept in the
                # metadata. Otherwise readers check the multipart ETag (the parts' MD5s).
                attributes[MD5_METADATA] = _md5_of(handle, size, path)
            handle.seek(0)
            self.abort_stale_uploads([full])
            with self.buffers.hold(self.parts_in_flight * self.settings.multipart_chunksize):
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
                observe.notify("PutObject", observed_status(error), len(data))
                if attempt < self.way.max_attempts and _damaged(exc):
                    continue
                raise error from exc

    def _put_md5(self, full: str, data: bytes, attributes: Mapping[str, str]) -> None:
        """A PUT with Content-MD5 (for stores without the newer checksums), through the
        control-plane client: botocore retries a refused body itself."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.control()
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
            raise self.settings.translate(exc, full, endpoint=self.endpoint) from exc

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

    def abort_stale_uploads(
        self, keys: Iterable[str], *, before: datetime | None = None, best_effort: bool = True
    ) -> int:
        """Abort incomplete multipart uploads of exactly the full ``keys`` (started before
        ``before``, when given): a run that was killed (SIGKILL, power loss) could not abort
        its own, and they would hold their parts' storage forever. Returns how many were
        aborted. Without the permission to list uploads nothing is aborted, silently when
        ``best_effort``, else the translated error is raised."""
        from botocore.exceptions import BotoCoreError, ClientError

        wanted = set(keys)
        if not wanted:
            return 0
        client = self.control()
        aborted = 0
        try:
            paginator = client.get_paginator("list_multipart_uploads")
            prefix = os.path.commonprefix(sorted(wanted))  # noqa: RUF071 - an S3 key prefix
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    key, upload_id = upload.get("Key", ""), upload.get("UploadId", "")
                    initiated = upload.get("Initiated")
                    if key not in wanted or not upload_id:
                        continue
                    if before is not None and initiated is not None and initiated >= before:
                        continue
                    with contextlib.suppress(ClientError, BotoCoreError):
                        client.abort_multipart_upload(
                            Bucket=self.bucket, Key=key, UploadId=upload_id
                        )
                        aborted += 1
        except (ClientError, BotoCoreError) as exc:
            if best_effort:
                return aborted
            raise self.settings.translate(exc, None, endpoint=self.endpoint) from exc
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
                max_concurrency=self.parts_in_flight,
            )
        except StorageError:
            raise
        except Exception as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, StorageError):
                raise cause from None
            error = self.error(exc, full, "UploadPart")
            observe.notify("UploadPart", observed_status(error))
            raise error from exc
        for size in sizes:
            observe.notify("UploadPart", 200, size)

    def _parts_md5(self, full: str, parts: Iterator[bytes], attributes: Mapping[str, str]) -> None:
        """Multipart with a Content-MD5 on every part, through the control-plane client."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.control()
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
                raise self.settings.translate(exc, full, endpoint=self.endpoint) from exc
            raise


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


def _damaged(exc: BaseException) -> bool:
    text = str(exc)
    return any(
        code in text for code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch")
    ) or ("checksum" in text.lower() and "400" in text)

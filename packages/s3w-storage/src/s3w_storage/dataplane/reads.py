"""The data plane's reads: whole, streamed and ranged GETs verified against the stored
MD5, and listings."""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from collections.abc import Iterator, Mapping
from queue import Full, Queue
from typing import Any

from s3w_storage import observe, protection
from s3w_storage.dataplane.store import BucketStore, observed_status
from s3w_storage.errors import StorageError
from s3w_storage.protection import MD5_METADATA


class Reads(BucketStore):
    """GETs (verified) and listings."""

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
                observe.notify("GetObject", observed_status(error))
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
            observe.notify("GetObject", observed_status(error))
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
        holds for it, or when the store gives nothing to compare with; else what is wrong."""
        found = self._digests(full, etag, stored_md5, blocks)
        if found is None or found[0] == found[1]:
            return None
        return f"its content does not match the stored MD5 ({found[0]} != {found[1]})"

    def matches_file(self, full: str, etag: str, path: str) -> bool | None:
        """Whether the file at ``path`` holds the object's content: by the MD5 s3w stored
        (looked up only where the ETag is not the content's MD5), the ETag, or a multipart
        ETag recomputed from the file's parts; None when the store gives nothing to compare
        with. Raises OSError or StorageError."""
        needs_stored = "-" in etag or protection.encrypts_etag(self.settings)
        stored = self.stored_md5(full) if needs_stored else None
        with open(path, "rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            found = self._digests(full, etag, stored, _FileBlocks(handle.fileno(), size))
        return None if found is None else found[0] == found[1]

    def _digests(
        self, full: str, etag: str, stored_md5: str | None, blocks: list[bytes] | Any
    ) -> tuple[str, str] | None:
        """(the content's digest, the store's) in the form the store gives, or None."""
        if stored_md5 is None and protection.encrypts_etag(self.settings):
            return None  # written by another tool: the ETag of SSE-KMS/SSE-C is no MD5
        if stored_md5 is None and "-" in etag:
            part = self.etag_part_size(full, etag, _total(blocks))
            if part is None:
                return None  # no MD5 the store can give: nothing to compare with
            return _multipart_md5(blocks, part), etag.lower()
        expected = (stored_md5 or etag).lower()
        if not re.fullmatch(r"[0-9a-f]{32}", expected):
            return None  # an ETag that is not an MD5 (SSE-KMS, SSE-C)
        return _md5(blocks), expected

    def etag_part_size(self, full: str, etag: str, size: int) -> int | None:
        """The part size of a multipart object of ``size`` bytes whose ETag is the MD5 of its
        parts' MD5s: s3w's own, or the first part's length; None when the ETag is no such
        thing (single-part, SSE-KMS/SSE-C) or the store cannot say."""
        count = etag.rsplit("-", 1)[1] if "-" in etag else ""
        if not count.isdigit() or int(count) <= 0 or protection.encrypts_etag(self.settings):
            return None
        chunk = self.settings.multipart_chunksize
        if math.ceil(size / chunk) == int(count):
            return chunk
        from botocore.exceptions import BotoCoreError, ClientError

        try:  # another tool's part size: the first part's length says it
            client = self.control()
            answer = client.head_object(Bucket=self.bucket, Key=full, PartNumber=1)
            return int(answer["ContentLength"])
        except (ClientError, BotoCoreError):  # a store without part HEADs: not verifiable
            return None

    def head_object(self, full: str) -> tuple[int, str, dict[str, str]]:
        """(size, ETag, attributes with the user metadata) of one object, in one HEAD."""
        import obstore

        try:
            result = obstore.get(self.store, full, options={"head": True})
        except Exception as exc:
            error = self.error(exc, full, "HeadObject")
            observe.notify("HeadObject", observed_status(error))
            raise error from exc
        observe.notify("HeadObject", 200)
        etag = (result.meta.get("e_tag") or "").strip('"')
        return (
            int(result.meta["size"]),
            etag,
            {str(k): str(v) for k, v in result.attributes.items()},
        )

    def stored_md5(self, full: str) -> str | None:
        """The whole content's MD5 that s3w keeps in a multipart object's metadata, if any."""
        return self.head_object(full)[2].get(MD5_METADATA)

    def download(self, full: str, fd: int) -> tuple[int, str]:
        """Write the object into the open file ``fd`` in parallel ranges and verify it;
        returns (size, etag). Raises StorageError.

        A multipart object is fetched part by part, and the thread that fetched a part takes
        its MD5 at once, so the check against the multipart ETag needs no second read of the
        file; any other object is read back and hashed whole."""
        from concurrent.futures import ThreadPoolExecutor

        import obstore

        size, etag, attributes = self.head_object(full)
        chunk = self.settings.multipart_chunksize
        if size <= chunk:
            with self.buffers.hold(size):
                data, headers = self.get(full)
                os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            return len(data), headers.get("ETag", "").strip('"')
        part = self.etag_part_size(full, etag, size)
        step = part or chunk
        digests: dict[int, bytes] = {}

        def piece(start: int) -> None:
            end = min(size, start + step)
            with self.buffers.hold(end - start):
                fetch_piece(start, end)

        def fetch_piece(start: int, end: int) -> None:
            try:
                data = obstore.get_range(self.store, full, start=start, end=end)
            except Exception as exc:
                error = self.error(exc, full, "GetObject")
                observe.notify("GetObject", observed_status(error))
                raise error from exc
            observe.notify("GetObject", 206, 0, len(data))
            view = memoryview(data)
            if len(view) != end - start:
                raise StorageError(
                    f"{full}: {len(view)} bytes came for a range of {end - start}; "
                    "the download was refused"
                )
            os.pwrite(fd, view, start)
            if part is not None:
                digests[start] = hashlib.md5(view, usedforsecurity=False).digest()

        with ThreadPoolExecutor(max_workers=self.parts_in_flight) as pool:
            list(pool.map(piece, range(0, size, step)))
        os.ftruncate(fd, size)
        if part is not None:
            joined = b"".join(digests[start] for start in sorted(digests))
            found = f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(digests)}"
            wrong = (
                None
                if found == etag
                else f"its content does not match the stored MD5 ({found} != {etag})"
            )
        else:
            stored = attributes.get(MD5_METADATA)
            wrong = self.mismatch(full, etag, stored, _FileBlocks(fd, size))
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
    digest = PartsMD5(part)
    for piece in _ranges(blocks, part):
        digest.update(piece)
    return digest.hexdigest()


class PartsMD5:
    """The ETag S3 gives a multipart upload with parts of ``part`` bytes (the MD5 of the
    parts' MD5s, then ``-`` and the count), fed with blocks of any size."""

    def __init__(self, part: int) -> None:
        self.part = part
        self._done: list[bytes] = []
        self._current = hashlib.md5(usedforsecurity=False)
        self._filled = 0

    def update(self, block: bytes) -> None:
        view = memoryview(block)
        while view:
            take = min(len(view), self.part - self._filled)
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.part:
                self._done.append(self._current.digest())
                self._current = hashlib.md5(usedforsecurity=False)
                self._filled = 0

    def hexdigest(self) -> str:
        digests = self._done + ([self._current.digest()] if self._filled else [])
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

"""Copying a migration plan: streamed GET and PUT, multipart for large objects (aborted if
stopped), server-side CopyObject when one account reaches both sides; content type, the
other representation headers and user metadata kept."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from s3w_storage.bounded import bounded_map
from s3w_storage.dataplane import PartsMD5
from s3w_storage.errors import StorageError
from s3w_storage.migrate.archive import KeptRetention, copy_source_params
from s3w_storage.migrate.compare import Difference, stream_md5
from s3w_storage.migrate.plan import Copy, MigrateOptions, MigratePlan, build_plan
from s3w_storage.protection import MD5_METADATA, encrypts_etag
from s3w_storage.results import Progress, RunResult

if TYPE_CHECKING:
    from s3w_storage.objects import Storage
    from s3w_storage.sync.listing import RemoteObject

#: Objects up to this size are held in memory for one GET and one PUT; larger ones stream.
IN_MEMORY = 8 * 1024 * 1024
#: The largest object one CopyObject request may copy (S3's limit); larger ones go in parts.
COPY_OBJECT_LIMIT = 5 * 1024**3
#: Representation headers kept on a copy, besides ``x-amz-meta-*``.
KEPT_HEADERS = (
    "Content-Type",
    "Cache-Control",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
)

#: (key, bytes copied, how: 'server' | 'stream' | 'multipart').
Copied = tuple[str, int, str]
#: An object to copy and what became of it.
Outcome = tuple[Copy, Copied | StorageError]


@dataclass
class MigrateResult(RunResult):
    """What a migration did. ``ok`` is False when any object failed to copy."""

    PUBLISHED = "copied unchanged failed=failures deferred source=source_objects"
    PUBLISHED_BYTES = "copied=copied_bytes"

    server_side: bool
    source_objects: int
    source_bytes: int
    target_objects: int
    planned: int
    planned_bytes: int
    hashed: int
    reasons: dict[str, int] = field(default_factory=dict)
    copied: int = 0
    copied_bytes: int = 0
    server_side_copies: int = 0
    streamed_copies: int = 0
    multipart_copies: int = 0
    aborted_uploads: int = 0
    deferred: int = 0  # planned but left for a later run by ``limit``


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    kept = {name: headers[name] for name in KEPT_HEADERS if headers.get(name)}
    for name, value in headers.items():
        if name.lower().startswith("x-amz-meta-"):
            kept[name.lower()] = value
    return kept


@dataclass
class _Copier:
    """Copies objects from one side to the other; thread-safe."""

    source: Storage
    target: Storage
    server_side: bool
    jobs: int

    def __post_init__(self) -> None:
        self.retention = KeptRetention(self.source, self.target)

    def copy(self, item: Copy, on_bytes: Callable[[int], None] | None = None) -> Copied:
        """(key, bytes copied, how: 'server' | 'stream' | 'multipart'). Raises StorageError."""
        if self.server_side:
            done = self._server_side(item)
        elif item.size <= IN_MEMORY:
            done = self._whole(item)
        else:
            done = self._multipart(item, on_bytes)
        self.retention.after_copy(item.key)  # the rest of the source's retention, or why not
        return done

    def _server_side(self, item: Copy) -> Copied:
        source_key = self.source.full_key(item.key)
        if item.size > COPY_OBJECT_LIMIT:
            return self._managed_copy(item, source_key)
        try:
            # CopyObject carries no body: the server copies the bytes it holds.
            self.target.client.copy_object(
                Bucket=self.target.bucket,
                Key=self.target.full_key(item.key),
                CopySource={"Bucket": self.source.bucket, "Key": source_key},
                **copy_source_params(self.source),  # an SSE-C source's customer key
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.target.error(exc, item.key) from exc
        return item.key, item.size, "server"

    def _managed_copy(self, item: Copy, source_key: str) -> Copied:
        from s3w_storage.client import transfer_config

        info = self.source.head(item.key)
        extra: dict[str, Any] = {"MetadataDirective": "REPLACE", **copy_source_params(self.source)}
        if info is not None:
            extra["ContentType"] = info.content_type or "application/octet-stream"
            extra["Metadata"] = dict(info.metadata)
        try:
            self.target.client.copy(
                {"Bucket": self.source.bucket, "Key": source_key},
                self.target.bucket,
                self.target.full_key(item.key),
                ExtraArgs=extra,
                Config=transfer_config(self.target.settings),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.target.error(exc, item.key) from exc
        return item.key, item.size, "server"

    def _whole(self, item: Copy) -> Copied:
        # The GET is verified against the source's MD5; the PUT carries its checksum.
        with self.target.data.buffers.hold(item.size):
            body, headers = self.source.data.get(self.source.full_key(item.key))
            self.target.data.put_bytes(self.target.full_key(item.key), body, _attributes(headers))
        return item.key, len(body), "stream"

    def _multipart(self, item: Copy, on_bytes: Callable[[int], None] | None) -> Copied:
        """Stream the source into a multipart upload, each part with its checksum; the
        content's MD5 must match the source's or the upload is aborted."""
        full = self.source.full_key(item.key)
        blocks, headers = self.source.data.stream(full)
        attributes = _attributes(headers)
        etag = headers.get("ETag", "").strip('"').lower()
        # What the stream is checked against: the MD5 s3w stored, a single-part ETag, or a
        # multipart ETag (the parts' MD5s); else the source is hashed first.
        expected, part = attributes.get(MD5_METADATA, ""), None
        if not expected and not encrypts_etag(self.source.settings):
            if "-" not in etag:
                expected = etag
            elif not encrypts_etag(self.target.settings):
                part = self.source.data.etag_part_size(full, etag, item.size)
                expected = etag if part is not None else ""
        if not expected:
            expected = stream_md5(self.source, item.key)
        if part is None and encrypts_etag(self.target.settings):
            attributes[MD5_METADATA] = expected  # the target's ETag will be no MD5
        total = 0

        def checked() -> Iterator[bytes]:
            nonlocal total
            digest: Any = hashlib.md5(usedforsecurity=False) if part is None else PartsMD5(part)
            for block in blocks:
                digest.update(block)
                total += len(block)
                if on_bytes is not None:
                    on_bytes(len(block))
                yield block
            if digest.hexdigest() != expected:
                raise StorageError(f"{item.key}: the content read does not match the source's MD5")

        data = self.target.data  # the parts in flight and the stream's read-ahead (3 parts)
        with data.buffers.hold((data.parts_in_flight + 3) * data.settings.multipart_chunksize):
            data.put_parts(self.target.full_key(item.key), checked(), attributes)
        return item.key, total, "multipart"


def _attributes(headers: Mapping[str, str]) -> dict[str, str]:
    """The data plane's attributes (content headers, user metadata) for kept ``headers``."""
    kept = _kept_headers(headers)
    attributes = {
        (name[len("x-amz-meta-") :] if name.startswith("x-amz-meta-") else name): value
        for name, value in kept.items()
    }
    attributes.setdefault("Content-Type", "application/octet-stream")
    return attributes


def execute(
    source: Storage,
    target: Storage,
    plan: MigratePlan,
    options: MigrateOptions | None = None,
    *,
    progress: Progress | None = None,
) -> MigrateResult:
    """Carry out ``plan``; per-object failures are collected and the rest goes on."""
    options = options or MigrateOptions()
    copies = plan.copies if options.limit is None else plan.copies[: max(0, options.limit)]
    result = MigrateResult(
        dry_run=options.dry_run,
        server_side=plan.server_side,
        source_objects=plan.source_objects,
        source_bytes=plan.source_bytes,
        target_objects=plan.target_objects,
        planned=len(plan.copies),
        planned_bytes=plan.copy_bytes,
        unchanged=plan.unchanged,
        hashed=plan.hashed,
        reasons=plan.reasons(),
        failures=list(plan.errors),
        deferred=len(plan.copies) - len(copies),
    )
    if options.dry_run or not copies:
        return result
    report = progress or (lambda objects, size: None)
    jobs = options.jobs or target.settings.max_concurrency
    big = [c.key for c in copies if c.size > IN_MEMORY and not plan.server_side]
    result.aborted_uploads = target.data.abort_stale_uploads(
        (target.full_key(key) for key in big), before=datetime.now(UTC), best_effort=False
    )
    copier = _Copier(source, target, plan.server_side, jobs)

    def one(item: Copy) -> Outcome:
        try:
            return item, copier.copy(item, on_bytes=lambda n: report(0, n))
        except StorageError as exc:
            return item, exc

    small = [c for c in copies if c.size <= IN_MEMORY or plan.server_side]
    large = [c for c in copies if c.size > IN_MEMORY and not plan.server_side]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="s3w-copy") as pool:
        outcomes = []
        for item, done in bounded_map(pool, one, small, jobs * 4):
            report(1, 0 if isinstance(done, StorageError) else done[1])
            outcomes.append((item, done))
    # Large objects one at a time: each already sends its parts concurrently.
    for item in large:
        outcomes.append(one(item))
        report(1, 0)
    for item, done in outcomes:
        if isinstance(done, StorageError):
            result.failures.append(Difference(item.key, str(done)))
            continue
        _key, size, how = done
        result.copied += 1
        result.copied_bytes += size
        if how == "server":
            result.server_side_copies += 1
        elif how == "multipart":
            result.multipart_copies += 1
        else:
            result.streamed_copies += 1
    return result


def migrate(
    source: Storage,
    target: Storage,
    options: MigrateOptions | None = None,
    *,
    progress: Progress | None = None,
    on_plan: Callable[[MigratePlan], None] | None = None,
    listings: tuple[dict[str, RemoteObject], dict[str, RemoteObject]] | None = None,
) -> MigrateResult:
    """Copy every object of ``source`` that ``target`` lacks or holds differently
    (``listings``: both sides already listed, see :func:`build_plan`)."""
    options = options or MigrateOptions()
    started = time.monotonic()
    plan = build_plan(source, target, options, listings=listings)
    if on_plan is not None:
        on_plan(plan)
    result = execute(source, target, plan, options, progress=progress)
    result.seconds = round(time.monotonic() - started, 3)
    return result

"""Upload primitives for the sync executor: one PUT per small file, multipart for large ones.

Small-file uploads are bound by botocore's CPU cost per request (signing, serialising,
parsing), not by the network, so many small files go to worker *processes*, each with its own
client and a pool of threads; one process's threads share one GIL. Large files are uploaded
in parts by the calling process, and a multipart upload that fails or is interrupted is
aborted so that no parts are left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.utils import ReadFileChunk

from s3w_storage.errors import translate
from s3w_storage.keys import content_type_for
from s3w_storage.lean import LeanS3
from s3w_storage.sync.plan import MD5_METADATA, file_md5

if TYPE_CHECKING:
    from s3w_storage.client import S3Client
    from s3w_storage.settings import StorageSettings

#: (relative key, local path) of one file to upload.
Item = tuple[str, str]
#: (relative key, bytes uploaded, error message or None).
Outcome = tuple[str, int, str | None]


@dataclass(frozen=True)
class Target:
    """Where uploads go: the client, the bucket and the key prefix ('' or 'p/')."""

    client: S3Client
    bucket: str
    head: str
    endpoint: str | None = None
    credentials_hint: str = ""

    def error(self, exc: ClientError | BotoCoreError, key: str) -> str:
        return str(
            translate(
                exc,
                bucket=self.bucket,
                key=key,
                endpoint=self.endpoint,
                credentials_hint=self.credentials_hint,
            )
        )


def upload_client(settings: StorageSettings, *, pool_size: int) -> S3Client:
    """A client for bulk uploads. Over TLS or to a loopback endpoint it sends
    ``UNSIGNED-PAYLOAD`` instead of hashing every body with SHA-256 (TLS already protects the
    body, as ``aws s3`` relies on); plain http to another host keeps the signed payload."""
    from botocore.config import Config

    from s3w_storage.client import client_config, make_client

    endpoint = settings.effective_endpoint
    if endpoint is not None and not endpoint.startswith("https://") and not _loopback(endpoint):
        return make_client(settings, pool_size=pool_size)
    config = client_config(settings, pool_size=pool_size).merge(
        Config(
            s3={
                "addressing_style": settings.effective_addressing_style,
                "payload_signing_enabled": False,
            }
        )
    )
    return _client_with(settings, config)


def _client_with(settings: StorageSettings, config: Any) -> S3Client:
    import boto3

    credentials = settings.credentials()
    kwargs: dict[str, Any] = {}
    if credentials is not None:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = credentials
    return boto3.session.Session().client(
        "s3", endpoint_url=settings.effective_endpoint, config=config, **kwargs
    )


def _loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def target_for(client: S3Client, settings: StorageSettings) -> Target:
    bucket = settings.bucket_name or ""
    head = settings.prefix + "/" if settings.prefix else ""
    return Target(client, bucket, head, settings.effective_endpoint, settings.credentials_hint)


def multipart_file(
    target: Target,
    item: Item,
    *,
    chunksize: int,
    jobs: int,
    on_bytes: Callable[[int], None] | None = None,
) -> Outcome:
    """Upload a large file in parts, storing its MD5 in the object's metadata so that a
    later ``--checksum`` sync can compare it. Any failure, including an interrupt, aborts
    the multipart upload before the exception propagates."""
    key, path = item
    full = target.head + key
    try:
        size = os.stat(path).st_size
        digest = file_md5(path)
    except OSError as exc:
        return key, 0, f"cannot read {path}: {exc.strerror}"
    abort_stale_uploads(target, full)
    try:
        created = target.client.create_multipart_upload(
            Bucket=target.bucket,
            Key=full,
            ContentType=content_type_for(key),
            Metadata={MD5_METADATA: digest},
        )
    except (ClientError, BotoCoreError) as exc:
        return key, 0, target.error(exc, key)
    upload_id = created["UploadId"]
    offsets = list(range(0, max(size, 1), chunksize))

    def part(number: int) -> dict[str, Any]:
        start = offsets[number - 1]
        with ReadFileChunk.from_filename(path, start, min(chunksize, size - start)) as body:
            response = target.client.upload_part(
                Bucket=target.bucket,
                Key=full,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,  # type: ignore[arg-type]  # a seekable file-like window
            )
        if on_bytes is not None:
            on_bytes(min(chunksize, size - start))
        return {"PartNumber": number, "ETag": response["ETag"]}

    def abort() -> None:
        with contextlib.suppress(ClientError, BotoCoreError):
            target.client.abort_multipart_upload(Bucket=target.bucket, Key=full, UploadId=upload_id)

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, 4))) as pool:
            parts = list(pool.map(part, range(1, len(offsets) + 1)))
        target.client.complete_multipart_upload(
            Bucket=target.bucket,
            Key=full,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
        )
    except (ClientError, BotoCoreError) as exc:
        abort()
        return key, 0, target.error(exc, key)
    except OSError as exc:
        abort()
        return key, 0, f"cannot read {path}: {exc.strerror}"
    except BaseException:  # an interrupt: leave no parts behind, then stop
        abort()
        raise
    return key, size, None


def abort_stale_uploads(target: Target, full: str) -> int:
    """Abort incomplete multipart uploads of exactly this key: a run that was killed
    (SIGKILL, power loss) could not abort its own, and they would hold their parts' storage
    forever. Best effort: without the permission to list or abort, nothing is done."""
    aborted = 0
    try:
        listed = target.client.list_multipart_uploads(Bucket=target.bucket, Prefix=full)
        for upload in listed.get("Uploads", []):
            if upload.get("Key") == full and "UploadId" in upload:
                target.client.abort_multipart_upload(
                    Bucket=target.bucket, Key=full, UploadId=upload["UploadId"]
                )
                aborted += 1
    except (ClientError, BotoCoreError):
        pass
    return aborted


# ----------------------------------------------------------------- worker processes

_WORKER: tuple[LeanS3, ThreadPoolExecutor] | None = None


def init_worker(lean: LeanS3, threads: int) -> None:
    """Process-pool initializer: a client and a thread pool of this process's own.

    The parent handles Ctrl-C for the whole run, so workers ignore SIGINT.
    """
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = (lean, ThreadPoolExecutor(max_workers=threads))


def put_batch(batch: list[Item]) -> list[Outcome]:
    """Worker-process task: PUT each file of ``batch`` on the process's threads."""
    if _WORKER is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("put_batch runs only in a process started with init_worker")
    lean, pool = _WORKER
    return list(pool.map(lambda item: put_lean(lean, item), batch))


def put_lean(lean: LeanS3, item: Item) -> Outcome:
    key, path = item
    size, error = lean.put(key, path)
    return key, size, error

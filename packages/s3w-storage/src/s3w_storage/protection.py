"""What the archive settings add to each request: encryption (SSE-S3, SSE-KMS, SSE-C),
storage classes and object-lock retention, for obstore (the data plane) and boto3.

obstore (Rust ``object_store``) sends SSE-S3/SSE-KMS on writes and the SSE-C headers on
every write, read and HEAD from its store configuration, and a storage class as the
``Storage-Class`` attribute. It cannot send the object-lock headers
(``x-amz-object-lock-mode``, ``x-amz-object-lock-retain-until-date``): an object that must be
locked goes up through boto3 (with Content-MD5, which S3 requires on a locked PUT).
boto3 clients get every header from one event handler (:func:`attach`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from s3w_storage.keys import DOCVERS

if TYPE_CHECKING:
    from s3w_storage.archive_settings import ArchiveSettings
    from s3w_storage.settings import StorageSettings

#: User metadata (``x-amz-meta-s3w-md5``) holding the whole content's MD5 where the ETag is
#: not one (a multipart upload, or encryption that hides it).
MD5_METADATA = "s3w-md5"
#: Operations that create an object: they get encryption, class and lock.
_CREATES = {"PutObject", "CreateMultipartUpload", "CopyObject"}
#: Operations that need the customer key of the object they touch (SSE-C).
_SSE_C = {"PutObject", "CreateMultipartUpload", "UploadPart", "GetObject", "HeadObject"}
_SSE_C |= {"CopyObject", "UploadPartCopy", "CompleteMultipartUpload"}


def is_docver(settings: StorageSettings, full: str) -> bool:
    """Whether the full key ``full`` is a document version's object (under ``docvers/``)."""
    head = settings.prefix + "/" if settings.prefix else ""
    return full.startswith(head + DOCVERS + "/")


def storage_class_for(settings: StorageSettings, full: str) -> str | None:
    """The storage class an object at ``full`` is written with (None: the bucket's default)."""
    if settings.docvers_storage_class and is_docver(settings, full):
        return settings.docvers_storage_class
    return settings.storage_class


def retain_until(settings: ArchiveSettings, now: datetime | None = None) -> datetime | None:
    """The retain-until date a document version written now gets (None: no lock)."""
    if settings.object_lock_mode is None or settings.retention_days is None:
        return None
    return (now or datetime.now(UTC)) + timedelta(days=settings.retention_days)


def locks(settings: StorageSettings, full: str) -> bool:
    """Whether an object written at ``full`` is locked (a document version, with a lock
    mode set): it must go up through boto3, which obstore cannot replace here."""
    return settings.object_lock_mode is not None and is_docver(settings, full)


def encrypts_etag(settings: ArchiveSettings) -> bool:
    """Whether the store's ETag may not be the content's MD5 (SSE-KMS and SSE-C on AWS):
    the MD5 then travels in the object's metadata so reads can still be verified."""
    return settings.sse == "aws:kms" or settings.sse_c_key is not None


def store_config(settings: ArchiveSettings) -> dict[str, str]:
    """obstore ``S3Store`` configuration for the encryption settings."""
    if settings.sse_c_key is not None:
        return {
            "server_side_encryption": "sse-c",
            "sse_customer_key_base64": settings.sse_c_key.get_secret_value(),
        }
    if settings.sse == "none":
        return {}
    config: dict[str, str] = {"server_side_encryption": settings.sse}
    if settings.sse_kms_key_id:
        config["sse_kms_key_id"] = settings.sse_kms_key_id
    return config


def put_attributes(
    settings: StorageSettings, full: str, attributes: Mapping[str, str], data: bytes | None = None
) -> dict[str, str]:
    """``attributes`` with the storage class for ``full`` and, where the ETag will not be an
    MD5, the content's MD5 in metadata (``data``: the whole body, when known)."""
    done = dict(attributes)
    wanted = storage_class_for(settings, full)
    if wanted:
        done["Storage-Class"] = wanted
    if data is not None and encrypts_etag(settings) and MD5_METADATA not in done:
        done[MD5_METADATA] = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return done


def sse_c_params(key_b64: str, prefix: str = "SSECustomer") -> dict[str, str]:
    """boto3 parameters that hand over a customer key, already encoded with its MD5 (so
    botocore's own handler leaves them alone, and no raw key is ever a parameter value)."""
    digest = hashlib.md5(base64.b64decode(key_b64), usedforsecurity=False).digest()
    return {
        f"{prefix}Algorithm": "AES256",
        f"{prefix}Key": key_b64,
        f"{prefix}KeyMD5": base64.b64encode(digest).decode(),
    }


def request_params(
    settings: StorageSettings, operation: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """The parameters the settings add to one boto3 call (the caller's own values win)."""
    added: dict[str, Any] = {}
    if settings.sse_c_key is not None and operation in _SSE_C:
        added.update(sse_c_params(settings.sse_c_key.get_secret_value()))
    if operation not in _CREATES:
        return {k: v for k, v in added.items() if k not in params}
    full = str(params.get("Key", ""))
    if settings.sse != "none":
        added["ServerSideEncryption"] = settings.sse
        if settings.sse_kms_key_id:
            added["SSEKMSKeyId"] = settings.sse_kms_key_id
    wanted = storage_class_for(settings, full)
    if wanted:
        added["StorageClass"] = wanted
    until = retain_until(settings)
    if until is not None and is_docver(settings, full):
        added["ObjectLockMode"] = settings.object_lock_mode
        added["ObjectLockRetainUntilDate"] = until
    return {k: v for k, v in added.items() if k not in params}


def attach(client: Any, settings: StorageSettings) -> Any:
    """Make ``client`` send the settings' headers on every call (and sign them into
    presigned URLs: a presigned GET of an SSE-C object needs the key's headers, which the
    downloader must send too). The customer key is handed over already encoded."""
    if (
        settings.sse == "none"
        and settings.sse_c_key is None
        and not settings.storage_class
        and not settings.docvers_storage_class
        and settings.object_lock_mode is None
    ):
        return client

    def add(params: dict[str, Any], model: Any, **_: Any) -> None:
        known = model.input_shape.members if model.input_shape is not None else {}
        added = request_params(settings, model.name, params)
        params.update({k: v for k, v in added.items() if k in known})

    client.meta.events.register_first("before-parameter-build.s3", add)
    return client


def user_metadata(attributes: Mapping[str, str]) -> dict[str, str]:
    """The user metadata among obstore ``attributes`` (for a boto3 PUT, which gets the
    content type and storage class as parameters of their own)."""
    return {k: v for k, v in attributes.items() if k not in ("Content-Type", "Storage-Class")}


def summary(settings: StorageSettings) -> str:
    """One line on encryption, classes and retention, for ``s3w info`` (no key material)."""
    parts = []
    if settings.sse_c_key is not None:
        parts.append("SSE-C (customer key set)")
    elif settings.sse != "none":
        kms = f" key {settings.sse_kms_key_id}" if settings.sse_kms_key_id else ""
        parts.append(f"SSE {settings.sse}{kms}")
    else:
        parts.append("encryption: the bucket's default")
    if settings.storage_class:
        parts.append(f"class {settings.storage_class}")
    if settings.docvers_storage_class:
        parts.append(f"docvers class {settings.docvers_storage_class}")
    if settings.object_lock_mode is not None:
        parts.append(f"docvers locked {settings.retention_days} days ({settings.object_lock_mode})")
    return "; ".join(parts)

"""A small Papermerge-shaped archive in a bucket, and Storage objects for either of two servers.

Used by the migrate tests: ``fill_archive`` writes document files, thumbnails, page previews,
OCR text, an object with user metadata, a large multipart object and a key outside the
layout, through a plain boto3 client (an independent oracle), and returns what it wrote.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from dataclasses import dataclass
from typing import Any

MiB = 2**20


def sse_c_headers(key: str) -> dict[str, str]:
    """The boto3 parameters that read or write an object under the SSE-C ``key`` (base64)."""
    digest = hashlib.md5(base64.b64decode(key), usedforsecurity=False).digest()
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": key,
        "SSECustomerKeyMD5": base64.b64encode(digest).decode(),
    }


@dataclass(frozen=True)
class Written:
    """One object as written: its bytes, content type and user metadata."""

    data: bytes
    content_type: str
    metadata: dict[str, str]

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()


def _shard(root: str, ident: str) -> str:
    return f"{root}/{ident[0:2]}/{ident[2:4]}/{ident}"


def fill_archive(
    client: Any, bucket: str, prefix: str = "", *, documents: int = 4, large: int = 0
) -> dict[str, Written]:
    """Write a Papermerge-shaped archive under ``prefix``; returns {relative key: Written}.

    ``large`` adds that many objects of 11 MiB uploaded multipart in 6 MiB parts (so their
    ETags are not MD5s and carry no stored MD5, as another tool would leave them).
    """
    head = prefix + "/" if prefix else ""
    objects: dict[str, Written] = {}
    for number in range(documents):
        doc, ver, page = (str(uuid.uuid4()) for _ in range(3))
        name = "Rechnung März 2024.pdf" if number == 0 else f"scan {number}.pdf"
        objects[f"{_shard('docvers', ver)}/{name}"] = Written(
            b"%PDF-1.7\n" + os.urandom(3000 + number), "application/pdf", {}
        )
        objects[f"{_shard('thumbnails/jpg', doc)}/sm.jpg"] = Written(
            b"\xff\xd8" + os.urandom(500), "image/jpeg", {}
        )
        for size in ("sm", "md"):
            objects[f"{_shard('previews/pages', page)}/{size}.jpg"] = Written(
                b"\xff\xd8" + os.urandom(800), "image/jpeg", {}
            )
        objects[f"{_shard('ocr/pages', page)}/page.txt"] = Written(
            f"text of page {number}".encode(), "text/plain", {}
        )
    objects["imports/notes.txt"] = Written(
        b"outside the layout", "text/plain", {"origin": "scanner-7", "s3w-note": "kept"}
    )
    objects["imports/a+b=c&d~e (1).txt"] = Written(b"characters to encode", "text/plain", {})
    for key, item in objects.items():
        extra: dict[str, Any] = {"ContentType": item.content_type}
        if item.metadata:
            extra["Metadata"] = item.metadata
        client.put_object(Bucket=bucket, Key=head + key, Body=item.data, **extra)
    for number in range(large):
        key = f"{_shard('docvers', str(uuid.uuid4()))}/big {number}.pdf"
        item = Written(b"%PDF-1.7\n" + os.urandom(11 * MiB), "application/pdf", {})
        put_multipart(client, bucket, head + key, item.data, item.content_type, part=6 * MiB)
        objects[key] = item
    return objects


def put_multipart(
    client: Any, bucket: str, key: str, data: bytes, content_type: str, *, part: int
) -> None:
    """Upload ``data`` in ``part``-sized parts with no stored MD5."""
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
    parts = []
    for number, start in enumerate(range(0, len(data), part), 1):
        answer = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data[start : start + part],
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )


def listed(client: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    """{full key: size} of every object under ``prefix``."""
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return found


def assert_copied(client: Any, bucket: str, prefix: str, objects: dict[str, Written]) -> None:
    """Every object is at ``prefix`` with the same bytes, content type and user metadata."""
    head = prefix + "/" if prefix else ""
    for key, item in objects.items():
        got = client.get_object(Bucket=bucket, Key=head + key)
        data = got["Body"].read()
        assert hashlib.md5(data, usedforsecurity=False).hexdigest() == item.md5, (
            f"{key}: content differs"
        )
        assert got["ContentType"] == item.content_type, f"{key}: {got['ContentType']}"
        metadata = {k: v for k, v in got.get("Metadata", {}).items() if k != "s3w-md5"}
        assert metadata == item.metadata, f"{key}: metadata {metadata} != {item.metadata}"

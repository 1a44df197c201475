"""One level of the bucket by a delimiter listing, what a listing says of an object, the server's clock.

The functions take the raw client (they are the bodies of ``Storage.list_folder`` and
``Storage.server_time``, which translate the errors).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from s3w_storage.client import S3Client


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """What the listing says about one object."""

    size: int
    mtime: float  # LastModified, seconds since the epoch
    etag: str

    @property
    def is_multipart(self) -> bool:
        """A multipart ETag ("<md5>-<parts>") is not the MD5 of the content."""
        return "-" in self.etag


def list_folder(
    client: S3Client, bucket: str, prefix: str, folder: str
) -> tuple[list[str], dict[str, RemoteObject]]:
    """(sub-folder prefixes, objects) directly in the relative ``folder`` ('' or 'docvers/'),
    both relative to ``prefix``; folder markers (keys ending in '/') are no objects."""
    head = prefix + "/" if prefix else ""
    subfolders: list[str] = []
    objects: dict[str, RemoteObject] = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=head + folder, Delimiter="/"):
        subfolders.extend(p["Prefix"][len(head) :] for p in page.get("CommonPrefixes", []))
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue
            stamp = item.get("LastModified")
            objects[item["Key"][len(head) :]] = RemoteObject(
                int(item["Size"]),
                stamp.timestamp() if stamp is not None else 0.0,
                item.get("ETag", "").strip('"'),
            )
    return subfolders, objects


def server_time(client: S3Client, bucket: str) -> float:
    """The S3 server's clock now, in whole seconds (what LastModified is compared with);
    this machine's clock when the server cannot be asked or sends no Date header."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.head_bucket(Bucket=bucket)
        date = response["ResponseMetadata"]["HTTPHeaders"].get("date")
    except (ClientError, BotoCoreError):  # whoever needs the bucket next reports what is wrong
        date = None
    return parsedate_to_datetime(date).timestamp() if date else float(int(time.time()))

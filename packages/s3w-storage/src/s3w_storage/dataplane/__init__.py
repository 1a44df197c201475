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

from s3w_storage.dataplane.reads import PartsMD5, Reads
from s3w_storage.dataplane.writes import CHANGED, ChangedDuringUpload, Writes, key_problem
from s3w_storage.protection import MD5_METADATA

__all__ = [
    "CHANGED",
    "MD5_METADATA",
    "ChangedDuringUpload",
    "DataPlane",
    "PartsMD5",
    "key_problem",
]


class DataPlane(Writes, Reads):
    """Bulk object traffic for one bucket (keys are full keys unless a method says
    otherwise): :class:`~.writes.Writes` and :class:`~.reads.Reads` over one
    :class:`~.store.BucketStore`; thread-safe, cheap to pickle for worker processes."""

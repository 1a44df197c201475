"""Bring the archive back from the bucket: ``restore(storage, dest, RestoreOptions(...))``
downloads what is missing or different under the prefix into a media root, each file
verified, fsynced and renamed into place with its modification time."""

from s3w_storage.restore.fetch import TEMP_SUFFIX, Listed, fetch, remove_stale
from s3w_storage.restore.run import RestoreOptions, RestoreResult, check_destination, restore

__all__ = [
    "TEMP_SUFFIX",
    "Listed",
    "RestoreOptions",
    "RestoreResult",
    "check_destination",
    "fetch",
    "remove_stale",
    "restore",
]

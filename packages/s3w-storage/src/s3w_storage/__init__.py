"""Papermerge media on S3-compatible object storage."""

from s3w_storage.errors import (
    AccessDenied,
    BucketNotFound,
    ConfigError,
    InvalidArgument,
    InvalidKey,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    is_transient,
)

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "BucketNotFound",
    "ConfigError",
    "InvalidArgument",
    "InvalidKey",
    "ObjectNotFound",
    "StorageError",
    "StorageUnavailable",
    "__version__",
    "is_transient",
]

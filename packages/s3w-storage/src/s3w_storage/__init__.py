"""Papermerge media on S3-compatible object storage."""

__version__ = "0.1.0"

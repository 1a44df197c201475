"""The s3w command."""

__version__ = "0.1.0"

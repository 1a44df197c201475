"""JPEG thumbnails and page previews from PDFs and images."""

__version__ = "0.1.0"

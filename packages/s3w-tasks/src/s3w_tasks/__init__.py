"""The Celery worker that executes Papermerge storage and preview tasks."""

__version__ = "0.1.0"

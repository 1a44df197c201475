"""Compatibility: deployments start ``celery -A s3worker.celery_app worker``; same app."""

from s3w_tasks.celery_app import app

__all__ = ["app"]

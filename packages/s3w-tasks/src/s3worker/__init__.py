"""Compatibility package: existing deployments start `celery -A s3worker.celery_app worker`."""

"""The Papermerge worker: what each contract task does, as plain functions that run without Celery.

One module a concept: :mod:`.ids` (parsing), :mod:`.files` (the media-root copy, folder
deletes), :mod:`.versions` (upload and delete), :mod:`.thumbnails` (the claim protocol and the
render), :mod:`.previews` (page images), :mod:`.uploads` (upload processing). Each function
takes ids as UUIDs or strings, is idempotent, and returns a small JSON-able summary (no
secrets, no URLs). Errors: :class:`~s3w_tasks.errors.PermanentError` when running again will
not help, storage/database errors as raised (``is_transient`` tells them apart).
"""

"""The wire contract with Papermerge core: task names, their kwargs and the queues they use.

Papermerge core sends these names with ``send_task(name, kwargs=..., queue=...)``; renaming
one breaks every deployment, so they live here and nowhere else.
"""

from __future__ import annotations

from typing import Final

PROCESS_UPLOAD: Final = "process_upload"
GENERATE_DOC_THUMBNAIL: Final = "s3_worker_generate_doc_thumbnail"
ADD_DOC_VERS: Final = "s3_worker_add_doc_vers"
REMOVE_DOC_VERS: Final = "s3_worker_remove_doc_vers"
REMOVE_DOC_THUMBNAIL: Final = "s3_worker_remove_doc_thumbnail"
REMOVE_DOCS_THUMBNAIL: Final = "s3_worker_remove_docs_thumbnail"
REMOVE_PAGE_THUMBNAIL: Final = "s3_worker_remove_page_thumbnail"
GENERATE_PAGE_IMAGE: Final = "s3_worker_generate_page_image"

S3: Final = "s3"
S3PREVIEW: Final = "s3preview"

#: Task name -> the logical queue Papermerge core sends it to.
TASK_QUEUES: Final[dict[str, str]] = {
    PROCESS_UPLOAD: S3,
    GENERATE_DOC_THUMBNAIL: S3PREVIEW,
    ADD_DOC_VERS: S3,
    REMOVE_DOC_VERS: S3,
    REMOVE_DOC_THUMBNAIL: S3,
    REMOVE_DOCS_THUMBNAIL: S3,
    REMOVE_PAGE_THUMBNAIL: S3,
    GENERATE_PAGE_IMAGE: S3PREVIEW,
}

#: Task name -> the keyword arguments Papermerge core sends (kwargs only, no positional args).
TASK_KWARGS: Final[dict[str, tuple[str, ...]]] = {
    PROCESS_UPLOAD: ("document_id", "document_version_id", "lang", "user_id"),
    GENERATE_DOC_THUMBNAIL: ("doc_id",),
    ADD_DOC_VERS: ("doc_ver_ids",),
    REMOVE_DOC_VERS: ("doc_ver_ids",),
    REMOVE_DOC_THUMBNAIL: ("doc_id",),
    REMOVE_DOCS_THUMBNAIL: ("doc_ids",),
    REMOVE_PAGE_THUMBNAIL: ("page_ids",),
    GENERATE_PAGE_IMAGE: ("page_ids",),
}

TASK_NAMES: Final[frozenset[str]] = frozenset(TASK_QUEUES)


def prefixed(name: str, prefix: str | None = None) -> str:
    """``"{PM_PREFIX}_{name}"`` when the prefix is non-empty, else ``name`` (as the core does)."""
    if prefix is None:
        from s3w_tasks.settings import get_settings

        prefix = get_settings().prefix
    return f"{prefix}_{name}" if prefix else name


def s3_queue() -> str:
    """``PM_S3_QUEUE_NAME`` when set, else ``prefixed("s3")``."""
    from s3w_tasks.settings import get_settings

    settings = get_settings()
    return settings.s3_queue_name or prefixed(S3, settings.prefix)


def preview_queue() -> str:
    """``PM_S3_PREVIEW_QUEUE_NAME`` when set, else ``prefixed("s3preview")``."""
    from s3w_tasks.settings import get_settings

    settings = get_settings()
    return settings.s3_preview_queue_name or prefixed(S3PREVIEW, settings.prefix)


def default_queues() -> list[str]:
    """The queues a worker started without ``-Q`` consumes: the s3 and s3preview queues."""
    return list(dict.fromkeys([s3_queue(), preview_queue()]))


def queue_for(task_name: str) -> str:
    """The concrete queue name a task is sent to under the current settings."""
    logical = TASK_QUEUES[task_name]
    return s3_queue() if logical == S3 else preview_queue()

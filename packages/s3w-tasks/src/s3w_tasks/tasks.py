"""The contract's tasks: thin wrappers over the worker's plain functions (:mod:`s3w_tasks.worker`).

Each task takes the kwargs Papermerge core sends, calls one plain function through
:func:`s3w_tasks.running.run_task` (retries, backoff, the outcome line), and ignores kwargs
it does not know. The app registers this module through its ``include``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from s3w_tasks import contract
from s3w_tasks.errors import clean
from s3w_tasks.running import ContractTask, run_task
from s3w_tasks.worker import previews, thumbnails, uploads, versions
from s3w_tasks.worker.ids import parse_id

log = logging.getLogger("s3w_tasks.tasks")


def _ignore_extra(name: str, extra: dict[str, Any]) -> None:
    if extra:
        log.warning("task=%s ignores unknown kwargs: %s", name, clean(", ".join(sorted(extra))))


def _fail_thumbnail(kwargs: dict[str, Any], message: str, task_id: str) -> None:
    doc_id = kwargs.get("doc_id")
    if doc_id:
        thumbnails.fail_thumbnail(parse_id(doc_id, "document id"), message, task_id)


def _fail_upload(kwargs: dict[str, Any], message: str, task_id: str) -> None:
    doc_id = kwargs.get("document_id")
    if doc_id:
        uploads.fail_upload(doc_id, message)


# ------------------------------------------------------------------------- the tasks


@shared_task(  # type: ignore[untyped-decorator]
    name=contract.PROCESS_UPLOAD, bind=True, base=ContractTask, give_up=_fail_upload
)
def process_upload(
    self: ContractTask,
    document_id: str | None = None,
    document_version_id: str | None = None,
    lang: str | None = None,
    user_id: str | None = None,
    **extra: Any,
) -> Any:
    _ignore_extra(self.name, extra)
    return run_task(
        self,
        {"document_id": document_id, "document_version_id": document_version_id},
        lambda last: uploads.process_upload(
            document_id, document_version_id, lang, user_id, last_attempt=last
        ),
    )


@shared_task(  # type: ignore[untyped-decorator]
    name=contract.GENERATE_DOC_THUMBNAIL, bind=True, base=ContractTask, give_up=_fail_thumbnail
)
def generate_doc_thumbnail(self: ContractTask, doc_id: str | None = None, **extra: Any) -> Any:
    _ignore_extra(self.name, extra)

    def call(last: bool) -> dict[str, Any]:
        status = thumbnails.generate_doc_thumbnail(doc_id, token=self.request.id, last_attempt=last)
        return {"doc_id": doc_id, "status": status}

    return run_task(self, {"doc_id": doc_id}, call)


@shared_task(  # type: ignore[untyped-decorator]
    name=contract.ADD_DOC_VERS, bind=True, base=ContractTask
)
def add_doc_vers(self: ContractTask, doc_ver_ids: list[str] | None = None, **extra: Any) -> Any:
    _ignore_extra(self.name, extra)
    return run_task(
        self, {"doc_ver_ids": doc_ver_ids}, lambda last: versions.add_doc_vers(doc_ver_ids)
    )


@shared_task(  # type: ignore[untyped-decorator]
    name=contract.REMOVE_DOC_VERS, bind=True, base=ContractTask
)
def remove_doc_vers(self: ContractTask, doc_ver_ids: list[str] | None = None, **extra: Any) -> Any:
    _ignore_extra(self.name, extra)
    return run_task(
        self, {"doc_ver_ids": doc_ver_ids}, lambda last: versions.remove_doc_vers(doc_ver_ids)
    )


@shared_task(  # type: ignore[untyped-decorator]
    name=contract.REMOVE_DOC_THUMBNAIL, bind=True, base=ContractTask
)
def remove_doc_thumbnail(self: ContractTask, doc_id: str | None = None, **extra: Any) -> Any:
    _ignore_extra(self.name, extra)
    return run_task(
        self,
        {"doc_id": doc_id},
        lambda last: thumbnails.remove_doc_thumbnails([parse_id(doc_id, "document id")]),
    )


@shared_task(  # type: ignore[untyped-decorator]
    name=contract.REMOVE_DOCS_THUMBNAIL, bind=True, base=ContractTask
)
def remove_docs_thumbnail(
    self: ContractTask, doc_ids: list[str] | None = None, **extra: Any
) -> Any:
    _ignore_extra(self.name, extra)
    return run_task(
        self, {"doc_ids": doc_ids}, lambda last: thumbnails.remove_doc_thumbnails(doc_ids)
    )


@shared_task(  # type: ignore[untyped-decorator]
    name=contract.REMOVE_PAGE_THUMBNAIL, bind=True, base=ContractTask
)
def remove_page_thumbnail(
    self: ContractTask, page_ids: list[str] | None = None, **extra: Any
) -> Any:
    _ignore_extra(self.name, extra)
    return run_task(
        self, {"page_ids": page_ids}, lambda last: previews.remove_page_thumbnails(page_ids)
    )


@shared_task(  # type: ignore[untyped-decorator]
    name=contract.GENERATE_PAGE_IMAGE, bind=True, base=ContractTask
)
def generate_page_image(
    self: ContractTask,
    page_ids: list[str] | None = None,
    page_id: str | None = None,
    **extra: Any,
) -> Any:
    _ignore_extra(self.name, extra)
    wanted = page_ids if page_ids is not None else page_id
    return run_task(self, {"page_ids": wanted}, lambda last: previews.generate_page_images(wanted))

"""Every task through a real worker, sent as Papermerge core sends it, with PM_PREFIX set.

One worker serves the module; each test makes its own documents, so tests only look at
their own rows and keys.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.services import wait_until
from tests.tasks.conftest import JPEG_MAGIC, Stack, image_bytes, pdf_bytes

REDIS_DB = 12
PREFIX = f"w{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def stack(stack_factory: Any) -> Stack:
    return stack_factory(redis_db=REDIS_DB, prefix=PREFIX, concurrency=2)


def _pdf_doc(stack: Stack, user: uuid.UUID, pages: int = 2, **kwargs: Any) -> pm.Doc:
    doc = pm.insert_document(stack.db_url, user, file_name="report.pdf", page_count=pages, **kwargs)
    pm.media_file(stack.media_root, doc.version, pdf_bytes(pages))
    return doc


def test_queues_are_the_prefixed_core_names(stack: Stack) -> None:
    assert stack.worker is not None
    log = stack.worker.log()
    assert f"{PREFIX}_s3 " in log or f". {PREFIX}_s3 " in log or f"{PREFIX}_s3\n" in log
    assert f"{PREFIX}_s3preview" in log


def test_add_doc_vers_uploads_each_version_and_resets_the_preview(
    stack: Stack, user: uuid.UUID
) -> None:
    doc = _pdf_doc(stack, user, preview_status="ready")
    second = pm.add_version(stack.db_url, doc, file_name="report-v2.pdf", page_count=1)
    data1, data2 = pdf_bytes(2, "one"), pdf_bytes(1, "two")
    pm.media_file(stack.media_root, doc.versions[0], data1)
    pm.media_file(stack.media_root, second, data2)
    # A stray file in the version folder must not be taken for the version's file.
    (stack.media_root / pm.docver_key(second.id, "aaa-stray.txt")).write_bytes(b"stray")

    ids = [str(v.id) for v in doc.versions]
    assert stack.run("s3_worker_add_doc_vers", doc_ver_ids=ids) == "ok"

    body, ctype = stack.get(stack.key(pm.docver_key(doc.versions[0].id, "report.pdf")))
    assert (body, ctype) == (data1, "application/pdf")
    body, ctype = stack.get(stack.key(pm.docver_key(second.id, "report-v2.pdf")))
    assert (body, ctype) == (data2, "application/pdf")
    assert stack.head(stack.key(pm.docver_key(second.id, "aaa-stray.txt"))) is None
    row = pm.document_row(stack.db_url, doc.id)
    assert row["preview_status"] is None, row

    # Duplicate delivery: same end state.
    assert stack.run("s3_worker_add_doc_vers", doc_ver_ids=ids) == "ok"
    assert stack.get(stack.key(pm.docver_key(second.id, "report-v2.pdf")))[0] == data2


def test_add_doc_vers_missing_local_file(stack: Stack, user: uuid.UUID) -> None:
    present = pm.insert_document(stack.db_url, user, file_name="in-bucket.pdf")
    stack.put(stack.key(pm.docver_key(present.version.id, "in-bucket.pdf")), b"%PDF-1.4 x")
    assert stack.run("s3_worker_add_doc_vers", doc_ver_ids=[str(present.version.id)]) == "ok"

    lost = pm.insert_document(stack.db_url, user, file_name="lost.pdf")
    task_id = stack.send("s3_worker_add_doc_vers", doc_ver_ids=[str(lost.version.id)])
    assert stack.worker is not None
    assert stack.worker.wait_for_outcome(task_id) == "failed"
    line = next(
        line for line in stack.worker.log().splitlines() if task_id in line and "outcome=" in line
    )
    assert "lost.pdf" in line, line
    assert str(lost.version.id) in line, line


def test_malformed_and_unknown_ids_fail_at_once(stack: Stack) -> None:
    assert stack.worker is not None
    bad = stack.send("s3_worker_add_doc_vers", doc_ver_ids=["not-a-uuid"])
    unknown = str(uuid.uuid4())
    missing = stack.send("s3_worker_generate_doc_thumbnail", doc_id=unknown)
    assert stack.worker.wait_for_outcome(bad) == "failed"
    assert stack.worker.wait_for_outcome(missing) == "failed"
    log = stack.worker.log()
    assert "outcome=retry" not in "\n".join(
        line for line in log.splitlines() if bad in line or missing in line
    )
    assert sum(1 for line in log.splitlines() if missing in line and "outcome=failed" in line) == 1


def test_remove_doc_vers_deletes_every_object_under_the_version(stack: Stack) -> None:
    version_id = uuid.uuid4()
    keys = [stack.key(pm.docver_key(version_id, f"f{i}.pdf")) for i in range(3)]
    for key in keys:
        stack.put(key, b"x")
    other = stack.key(pm.docver_key(uuid.uuid4(), "keep.pdf"))
    stack.put(other, b"keep")
    for _ in range(2):  # the second delivery finds nothing and succeeds
        assert stack.run("s3_worker_remove_doc_vers", doc_ver_ids=[str(version_id)]) == "ok"
        assert all(stack.head(k) is None for k in keys)
    assert stack.head(other) is not None


def test_remove_doc_thumbnails(stack: Stack) -> None:
    docs = [uuid.uuid4() for _ in range(3)]
    for doc in docs:
        stack.put(stack.key(pm.thumbnail_key(doc)), b"jpg", "image/jpeg")
    assert stack.run("s3_worker_remove_doc_thumbnail", doc_id=str(docs[0])) == "ok"
    assert stack.head(stack.key(pm.thumbnail_key(docs[0]))) is None
    assert stack.head(stack.key(pm.thumbnail_key(docs[1]))) is not None
    for _ in range(2):
        ids = [str(d) for d in docs[1:]]
        assert stack.run("s3_worker_remove_docs_thumbnail", doc_ids=ids) == "ok"
    assert all(stack.head(stack.key(pm.thumbnail_key(d))) is None for d in docs)


@pytest.mark.slow
def test_remove_page_thumbnails_for_2500_previews(stack: Stack) -> None:
    pages = [uuid.uuid4() for _ in range(625)]
    keys = [stack.key(pm.page_preview_key(p, s)) for p in pages for s in ("sm", "md", "lg", "xl")]
    keys += [stack.key(pm.legacy_page_key(p, "100.jpg")) for p in pages[:50]]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: stack.put(k, b"j", "image/jpeg"), keys))
    assert len(keys) == 2550
    ids = [str(p) for p in pages]
    assert stack.run("s3_worker_remove_page_thumbnail", page_ids=ids, timeout=180) == "ok"
    assert stack.keys(stack.key("previews/pages/")) == []
    legacy = [k for k in stack.keys(stack.key("thumbnails/jpg/")) if k in set(keys)]
    assert legacy == []


def test_generate_doc_thumbnail(stack: Stack, user: uuid.UUID) -> None:
    doc = _pdf_doc(stack, user)
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(doc.id)) == "ok"
    body, ctype = stack.get(stack.key(pm.thumbnail_key(doc.id)))
    assert ctype == "image/jpeg"
    assert body.startswith(JPEG_MAGIC)
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(body)).width == 100
    row = pm.document_row(stack.db_url, doc.id)
    assert (row["preview_status"], row["preview_error"]) == ("ready", None)
    # Duplicate delivery leaves it ready.
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(doc.id)) == "ok"
    assert pm.document_row(stack.db_url, doc.id)["preview_status"] == "ready"


def test_generate_doc_thumbnail_downloads_a_missing_local_file(
    stack: Stack, user: uuid.UUID
) -> None:
    doc = pm.insert_document(stack.db_url, user, file_name="remote.pdf")
    stack.put(stack.key(pm.docver_key(doc.version.id, "remote.pdf")), pdf_bytes(1))
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(doc.id)) == "ok"
    assert pm.document_row(stack.db_url, doc.id)["preview_status"] == "ready"
    assert (stack.media_root / pm.docver_key(doc.version.id, "remote.pdf")).read_bytes()[
        :4
    ] == b"%PDF"


def test_corrupt_pdf_fails_the_preview_and_the_worker_stays_healthy(
    stack: Stack, user: uuid.UUID
) -> None:
    doc = pm.insert_document(stack.db_url, user, file_name="broken.pdf")
    pm.media_file(stack.media_root, doc.version, b"%PDF-1.4\nthis is not a pdf at all\n")
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(doc.id)) == "failed"
    row = pm.document_row(stack.db_url, doc.id)
    assert row["preview_status"] == "failed"
    assert "broken.pdf" in (row["preview_error"] or ""), row
    assert not row["preview_error"].startswith("s3w-claim"), row
    good = _pdf_doc(stack, user, pages=1)
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(good.id)) == "ok"
    assert stack.worker is not None
    assert stack.worker.alive()


def test_thumbnail_waits_until_processing_is_ready(stack: Stack, user: uuid.UUID) -> None:
    doc = _pdf_doc(stack, user, processing_status="processing_pages")
    task_id = stack.send("s3_worker_generate_doc_thumbnail", doc_id=str(doc.id))
    assert stack.worker is not None
    stack.worker.wait_for(rf"id={task_id} .*outcome=retry", timeout=30)
    assert pm.document_row(stack.db_url, doc.id)["preview_status"] is None
    pm.execute(
        stack.db_url,
        "UPDATE documents SET processing_status = 'ready' WHERE node_id = %s",
        (str(doc.id),),
    )
    assert stack.worker.wait_for_outcome(task_id, timeout=60) == "ok"
    assert pm.document_row(stack.db_url, doc.id)["preview_status"] == "ready"


def test_stale_pending_is_reclaimed_and_fresh_pending_is_left(
    stack: Stack, user: uuid.UUID
) -> None:
    stale = _pdf_doc(stack, user, preview_status="pending")  # no claim marker: left by others
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(stale.id)) == "ok"
    assert pm.document_row(stack.db_url, stale.id)["preview_status"] == "ready"

    import time

    fresh = _pdf_doc(stack, user)
    pm.set_preview(stack.db_url, fresh.id, "pending", f"s3w-claim {int(time.time())} other-task")
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(fresh.id)) == "ok"
    assert pm.document_row(stack.db_url, fresh.id)["preview_status"] == "pending"
    assert stack.head(stack.key(pm.thumbnail_key(fresh.id))) is None


def test_generate_page_images(stack: Stack, user: uuid.UUID) -> None:
    doc = _pdf_doc(stack, user, pages=3)
    ids = [str(p) for p in doc.version.page_ids]
    assert stack.run("s3_worker_generate_page_image", page_ids=ids[:2]) == "ok"
    assert stack.run("s3_worker_generate_page_image", page_id=ids[2]) == "ok"
    widths = {"sm": 200, "md": 600, "lg": 900, "xl": 1600}
    import io

    from PIL import Image

    for page in ids:
        for size, width in widths.items():
            body, ctype = stack.get(stack.key(pm.page_preview_key(page, size)))
            assert ctype == "image/jpeg"
            assert Image.open(io.BytesIO(body)).width == width, (page, size)
    # Duplicate delivery, then removal of the pages' images.
    assert stack.run("s3_worker_generate_page_image", page_ids=ids) == "ok"
    assert stack.run("s3_worker_remove_page_thumbnail", page_ids=ids) == "ok"
    assert all(stack.keys(stack.key(f"previews/pages/{p[:2]}/{p[2:4]}/{p}/")) == [] for p in ids)


# ------------------------------------------------------------------- process_upload


def _upload(stack: Stack, user: uuid.UUID, name: str, mime: str, data: bytes) -> pm.Doc:
    """What the core leaves: document 'uploaded', version 1 with no pages, file in place."""
    doc = pm.insert_document(
        stack.db_url,
        user,
        file_name=name,
        mime_type=mime,
        page_count=0,
        processing_status="uploaded",
    )
    pm.media_file(stack.media_root, doc.version, data)
    stack.put(stack.key(pm.docver_key(doc.version.id, name)), data, mime)
    return doc


def _process(stack: Stack, doc: pm.Doc, lang: str = "DocumentLang.deu") -> str:
    return stack.run(
        "process_upload",
        document_id=str(doc.id),
        document_version_id=str(doc.version.id),
        lang=lang,
        user_id=str(doc.user_id),
    )


def test_process_upload_pdf(stack: Stack, user: uuid.UUID) -> None:
    data = pdf_bytes(3)
    doc = _upload(stack, user, "scan.pdf", "application/pdf", data)
    (stack.media_root / pm.docver_key(doc.version.id, "scan.pdf")).unlink()  # only in S3
    assert _process(stack, doc) == "ok"
    row = pm.document_row(stack.db_url, doc.id)
    assert (row["processing_status"], row["processing_error"]) == ("ready", None)
    [version] = pm.versions(stack.db_url, doc.id)
    assert (version["size"], version["page_count"]) == (len(data), 3)
    pages = pm.pages(stack.db_url, version["id"])
    assert [(p["number"], p["page_count"], p["lang"]) for p in pages] == [
        (1, 3, "deu"),
        (2, 3, "deu"),
        (3, 3, "deu"),
    ]
    # Duplicate delivery: same versions, same page ids.
    assert _process(stack, doc) == "ok"
    assert [p["id"] for p in pm.pages(stack.db_url, version["id"])] == [p["id"] for p in pages]
    assert len(pm.versions(stack.db_url, doc.id)) == 1


@pytest.mark.parametrize(("kind", "frames"), [("jpeg", 1), ("png", 1), ("tiff", 3)])
def test_process_upload_image(stack: Stack, user: uuid.UUID, kind: str, frames: int) -> None:
    name = f"photo.{'jpg' if kind == 'jpeg' else kind}"
    data = image_bytes(kind, frames)
    doc = _upload(stack, user, name, f"image/{kind}", data)
    assert _process(stack, doc) == "ok"
    assert _process(stack, doc) == "ok"  # duplicate delivery
    row = pm.document_row(stack.db_url, doc.id)
    assert (row["processing_status"], row["processing_error"]) == ("ready", None)
    original, converted = pm.versions(stack.db_url, doc.id)
    assert (original["size"], original["page_count"]) == (len(data), frames)
    assert converted["number"] == 2
    assert converted["file_name"] == f"{name}.pdf"
    assert converted["mime_type"] == "application/pdf"
    assert converted["is_original"] is False
    assert converted["source_version_id"] == original["id"]
    assert converted["creation_reason"] == "conversion"
    assert converted["short_description"] == f"{kind} -> pdf"
    assert converted["page_count"] == frames
    body, ctype = stack.get(stack.key(pm.docver_key(converted["id"], f"{name}.pdf")))
    assert ctype == "application/pdf"
    assert body.startswith(b"%PDF")
    assert converted["size"] == len(body)
    local = stack.media_root / pm.docver_key(converted["id"], f"{name}.pdf")
    assert local.read_bytes() == body
    for version in (original, converted):
        pages = pm.pages(stack.db_url, version["id"])
        assert [p["number"] for p in pages] == list(range(1, frames + 1))
    # The converted version renders: a thumbnail from the last version.
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(doc.id)) == "ok"
    assert pm.document_row(stack.db_url, doc.id)["preview_status"] == "ready"


def test_process_upload_corrupt_file_fails_with_a_message(stack: Stack, user: uuid.UUID) -> None:
    doc = _upload(stack, user, "bad.pdf", "application/pdf", b"%PDF-1.7\ngarbage")
    assert _process(stack, doc) == "failed"
    row = pm.document_row(stack.db_url, doc.id)
    assert row["processing_status"] == "failed"
    assert "bad.pdf" in (row["processing_error"] or ""), row
    assert pm.pages(stack.db_url, doc.version.id) == []


def test_a_document_whose_message_was_lost_is_reprocessed_to_ready(
    stack: Stack, user: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``s3w reprocess-uploads``: the core's process_upload never arrived (the broker lost
    it); sent again, it runs on the worker and the document ends ready with its pages."""
    from s3w_tasks.fleet.backfill import reprocess_uploads

    doc = _upload(stack, user, "lost.pdf", "application/pdf", pdf_bytes(2))
    pm.execute(
        stack.db_url,
        "UPDATE document_versions SET created_at = now() - interval '2 hours' "
        "WHERE document_id = %s",
        (str(doc.id),),
    )
    for name, value in stack.env.items():  # this process sends as the core would
        monkeypatch.setenv(name, value)

    result = reprocess_uploads(3600)

    assert str(doc.id) in result.documents
    wait_until(
        lambda: pm.document_row(stack.db_url, doc.id)["processing_status"] == "ready",
        timeout=60,
        what="the reprocessed document",
    )
    [version] = pm.versions(stack.db_url, doc.id)
    assert version["page_count"] == 2
    assert [p["number"] for p in pm.pages(stack.db_url, version["id"])] == [1, 2]

"""The worker's whole task set, and ``s3w sync``, with credentials limited to one bucket.

docs/least-privilege.md gives the AWS IAM policy (GetObject, PutObject, DeleteObject,
AbortMultipartUpload on the objects; ListBucket and ListBucketMultipartUploads on the
bucket) and the R2 token scope (Object Read & Write, one bucket). SeaweedFS cannot express
IAM actions one by one; its nearest equivalent is an identity with only ``Read``, ``Write``
and ``List`` on that bucket (no ``Admin``, no other bucket), which is what this test runs
every task with. It also shows the limits hold: the identity can neither create a bucket
nor read or list another one.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.test_s3_outage import sync_env
from tests.support import papermerge as pm
from tests.support.celery_worker import ROOT
from tests.support.results import record
from tests.support.services import S3Identity, SeaweedS3, find_binary, start_seaweedfs
from tests.support.stack import Stack, bulk_documents, pdf_bytes, png_bytes

BUCKET = f"lp-{uuid.uuid4().hex[:16]}"
OTHER = f"lp-other-{uuid.uuid4().hex[:10]}"
WORKER = S3Identity(
    "s3w-worker",
    "s3w-worker-access",
    "s3w-worker-secret-" + uuid.uuid4().hex,
    (f"Read:{BUCKET}", f"Write:{BUCKET}", f"List:{BUCKET}"),
)


@pytest.fixture
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SeaweedS3, Any]]:
    from tests.conftest import S3Service

    server = start_seaweedfs(
        access_key="lp-admin",
        secret_key="lp-admin-" + uuid.uuid4().hex,
        base=tmp_path_factory.mktemp("lp-weed"),
        identities=[WORKER],
    )
    try:
        admin = S3Service(server.endpoint, server.access_key, server.secret_key).client()
        admin.create_bucket(Bucket=BUCKET)
        admin.create_bucket(Bucket=OTHER)
        admin.put_object(Bucket=OTHER, Key="private.pdf", Body=b"not yours")
        yield server, S3Service(server.endpoint, WORKER.access_key, WORKER.secret_key)
    finally:
        server.stop()


def test_full_task_set_with_bucket_scoped_credentials(
    make_stack: Callable[..., Stack], limited: tuple[SeaweedS3, Any], tmp_path: Path
) -> None:
    from botocore.exceptions import ClientError

    _server, worker_s3 = limited
    st = make_stack(s3=worker_s3, bucket=BUCKET)
    user = pm.insert_user(st.db_url)
    ready = bulk_documents(st.db_url, user, ["lp-a.pdf", "lp-b.pdf"], page_count=2)
    for row in ready:
        st.write_media(row, pdf_bytes(2))
    pdf_up, png_up = bulk_documents(st.db_url, user, ["lp-up.pdf"], page_count=0,
                                    processing_status="uploaded") + bulk_documents(
        st.db_url, user, ["lp-up.png"], mime_type="image/png", page_count=0,
        processing_status="uploaded")  # fmt: skip
    st.write_media(pdf_up, pdf_bytes(3))
    st.write_media(png_up, png_bytes())
    st.start_worker(concurrency=2)
    a, b = ready
    calls = [
        ("s3_worker_add_doc_vers", {"doc_ver_ids": [str(a.version_id), str(b.version_id)]}),
        ("s3_worker_generate_doc_thumbnail", {"doc_id": str(a.doc_id)}),
        ("s3_worker_generate_page_image", {"page_ids": [str(p) for p in a.page_ids]}),
        ("s3_worker_generate_page_image", {"page_id": str(b.page_ids[0])}),
        ("process_upload", {"document_id": str(pdf_up.doc_id),
                            "document_version_id": str(pdf_up.version_id),
                            "lang": "deu", "user_id": str(user)}),
        ("process_upload", {"document_id": str(png_up.doc_id),
                            "document_version_id": str(png_up.version_id),
                            "lang": "deu", "user_id": str(user)}),
    ]  # fmt: skip
    first = [st.send(name, **kwargs) for name, kwargs in calls]
    assert set(st.wait_for_outcomes(first, timeout=180).values()) == {"ok"}, st.failure_lines()
    made = st.listing("")
    removals = [
        ("s3_worker_remove_page_thumbnail", {"page_ids": [str(p) for p in a.page_ids[:1]]}),
        ("s3_worker_remove_page_thumbnail", {"page_ids": [str(a.page_ids[1]), str(b.page_ids[0])]}),
        ("s3_worker_remove_doc_thumbnail", {"doc_id": str(a.doc_id)}),
        ("s3_worker_remove_docs_thumbnail", {"doc_ids": [str(a.doc_id), str(b.doc_id)]}),
        ("s3_worker_remove_doc_vers", {"doc_ver_ids": [str(a.version_id)]}),
    ]
    second = [st.send(name, **kwargs) for name, kwargs in removals]
    assert set(st.wait_for_outcomes(second, timeout=180).values()) == {"ok"}, st.failure_lines()
    left = st.listing("")

    # s3w sync with a multipart upload, and its cleanup of a stale incomplete upload.
    root = tmp_path / "lp-media"
    (root / "docvers/aa/bb").mkdir(parents=True)
    (root / "docvers/aa/bb/big.pdf").write_bytes(b"%" * (6 * 1024 * 1024))
    client = worker_s3.client()
    sync_prefix = f"{st.prefix}-sync"
    client.create_multipart_upload(Bucket=BUCKET, Key=f"{sync_prefix}/docvers/aa/bb/big.pdf")
    env = {**sync_env(st, sync_prefix), "PM_S3_MULTIPART_THRESHOLD": str(5 * 1024 * 1024),
           "PM_S3_MULTIPART_CHUNKSIZE": str(5 * 1024 * 1024)}  # fmt: skip
    sync = subprocess.run(
        [find_binary("s3w"), "sync", str(root), "--no-progress"],
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=180,
        check=False,
    )
    stale = client.list_multipart_uploads(Bucket=BUCKET, Prefix=sync_prefix).get("Uploads", [])

    denied = []
    for attempt in (
        lambda: client.create_bucket(Bucket=f"lp-new-{uuid.uuid4().hex[:8]}"),
        lambda: client.get_object(Bucket=OTHER, Key="private.pdf"),
        lambda: client.list_objects_v2(Bucket=OTHER),
        lambda: client.put_object(Bucket=OTHER, Key="x", Body=b"x"),
        lambda: client.delete_bucket(Bucket=BUCKET),
    ):
        with pytest.raises(ClientError) as raised:
            attempt()
        denied.append(raised.value.response["Error"]["Code"])
    record(
        "Least privilege: every task and s3w sync with bucket-scoped credentials",
        result=(
            f"{len(first) + len(second)}/{len(first) + len(second)} tasks ok "
            f"({len(made)} objects made, {len(made) - len(left)} removed); sync exit "
            f"{sync.returncode}, stale multipart uploads left {len(stale)}"
        ),
        figure=f"denied as they should be: {denied}",
    )
    assert sync.returncode == 0, sync.stderr.decode()[-1000:]
    assert stale == []
    thumbs = [k for k in left if "/thumbnails/" in k or "/previews/" in k]
    assert thumbs == [], thumbs
    assert not any(str(a.version_id) in k for k in left)
    assert set(denied) <= {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}, denied

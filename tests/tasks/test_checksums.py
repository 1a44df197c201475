"""Tasks write through the same data plane: every PUT a worker sends carries a checksum.

The worker (a real Celery worker process) reaches S3 through a request-recording proxy on
loopback, which sees each request's headers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.support.proxy import HttpProxy
from tests.tasks.conftest import Stack, pdf_bytes

REDIS_DB = 11  # this module's Redis database
PREFIX = f"c{uuid.uuid4().hex[:8]}"
CHECKSUM_HEADERS = ("x-amz-checksum-sha256", "x-amz-checksum-crc64nvme", "content-md5")


@pytest.fixture(scope="module")
def proxied(stack_factory: Any, s3_service: Any) -> Iterator[tuple[HttpProxy, Stack]]:
    with HttpProxy(int(s3_service.endpoint.rsplit(":", 1)[1])) as proxy:
        stack = stack_factory(
            redis_db=REDIS_DB,
            prefix=PREFIX,
            extra_env={"PM_S3_ENDPOINT_URL": proxy.url},
            concurrency=1,
        )
        yield proxy, stack


def test_every_put_a_worker_sends_carries_a_checksum(
    proxied: tuple[HttpProxy, Stack], user: uuid.UUID
) -> None:
    proxy, stack = proxied
    doc = pm.insert_document(stack.db_url, user, file_name="report.pdf", page_count=1)
    data = pdf_bytes(1)
    pm.media_file(stack.media_root, doc.version, data)
    ids = [str(v.id) for v in doc.versions]
    assert stack.run("s3_worker_add_doc_vers", doc_ver_ids=ids) == "ok"
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(doc.id)) == "ok"
    assert stack.get(stack.key(pm.docver_key(doc.version.id, "report.pdf")))[0] == data
    puts = proxy.puts()
    assert len(puts) >= 2, [f"{r.method} {r.target}" for r in proxy.requests]
    missing = [
        f"{r.method} {r.target}" for r in puts if not any(h in r.headers for h in CHECKSUM_HEADERS)
    ]
    assert missing == [], f"PUTs without a checksum: {missing}"

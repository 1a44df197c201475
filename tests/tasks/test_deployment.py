"""How existing deployments start the worker: ``celery -A s3worker.celery_app worker`` with no
``-Q`` and no ``PM_PREFIX``, logging from ``PM_LOG_CONFIG``; and the same over RabbitMQ."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.support import papermerge as pm
from tests.tasks.conftest import JPEG_MAGIC, Stack, pdf_bytes

REDIS_DB = 13  # this module consumes the unprefixed "s3" and "s3preview" queues

LOG_CONFIG = """
version: 1
disable_existing_loggers: false
formatters:
  marked:
    format: "CUSTOM-LOG %(levelname)s %(name)s: %(message)s"
handlers:
  out:
    class: logging.StreamHandler
    formatter: marked
    stream: ext://sys.stderr
root:
  level: INFO
  handlers: [out]
"""


@pytest.fixture(scope="module")
def stack(stack_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    config = tmp_path_factory.mktemp("logcfg") / "log_config.yaml"
    config.write_text(LOG_CONFIG)
    return stack_factory(
        redis_db=REDIS_DB,
        app="s3worker.celery_app",
        extra_env={"PM_LOG_CONFIG": str(config)},
    )


def test_unprefixed_worker_serves_both_core_queues(stack: Stack, user: uuid.UUID) -> None:
    assert stack.queue_names == {"s3": "s3", "s3preview": "s3preview"}
    doc = pm.insert_document(stack.db_url, user, file_name="plain.pdf", preview_status="ready")
    data = pdf_bytes(1)
    pm.media_file(stack.media_root, doc.version, data)
    assert stack.run("s3_worker_add_doc_vers", doc_ver_ids=[str(doc.version.id)]) == "ok"
    assert stack.get(pm.docver_key(doc.version.id, "plain.pdf")) == (data, "application/pdf")
    assert pm.document_row(stack.db_url, doc.id)["preview_status"] is None  # new version
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(doc.id)) == "ok"
    body, ctype = stack.get(pm.thumbnail_key(doc.id))
    assert ctype == "image/jpeg"
    assert body.startswith(JPEG_MAGIC)
    assert pm.document_row(stack.db_url, doc.id)["preview_status"] == "ready"


def test_logging_comes_from_pm_log_config_and_hides_secrets(stack: Stack) -> None:
    assert stack.worker is not None
    log = stack.worker.log()
    outcome_lines = [line for line in log.splitlines() if "outcome=" in line]
    assert outcome_lines
    assert all(line.startswith("CUSTOM-LOG ") for line in outcome_lines), outcome_lines[:3]
    assert all("duration=" in line and " id=" in line for line in outcome_lines)
    assert stack.env["AWS_SECRET_ACCESS_KEY"] not in log
    assert not any("http://" in line or "postgresql://" in line for line in outcome_lines)


@pytest.mark.amqp
def test_rabbitmq_broker(stack_factory: Any, amqp_url: str, user: uuid.UUID) -> None:
    prefix = f"a{uuid.uuid4().hex[:8]}"
    stack = stack_factory(redis_db=REDIS_DB, prefix=prefix, broker_url=amqp_url)
    assert stack.queue_names == {"s3": f"{prefix}_s3", "s3preview": f"{prefix}_s3preview"}
    doc = pm.insert_document(stack.db_url, user, file_name="rabbit.pdf")
    data = pdf_bytes(2)
    pm.media_file(stack.media_root, doc.version, data)
    assert stack.run("s3_worker_add_doc_vers", doc_ver_ids=[str(doc.version.id)]) == "ok"
    assert stack.get(stack.key(pm.docver_key(doc.version.id, "rabbit.pdf")))[0] == data
    assert stack.run("s3_worker_generate_doc_thumbnail", doc_id=str(doc.id)) == "ok"
    assert pm.document_row(stack.db_url, doc.id)["preview_status"] == "ready"
    ids = [str(p) for p in doc.version.page_ids]
    assert stack.run("s3_worker_generate_page_image", page_ids=ids) == "ok"
    assert stack.head(stack.key(pm.page_preview_key(ids[0], "xl"))) is not None

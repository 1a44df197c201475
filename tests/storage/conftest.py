"""Fixtures for the storage tests: a Storage on the test bucket and a server with limited users."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support import services

from s3w_storage.client import make_client
from s3w_storage.objects import Storage
from s3w_storage.settings import load_settings


@pytest.fixture
def storage(storage_env: dict[str, str]) -> Storage:
    """A Storage on the test's bucket, built from the environment like production code."""
    return Storage(make_client(load_settings()), load_settings())


@dataclass(frozen=True)
class LimitedServer:
    """A SeaweedFS whose admin may do anything and whose other identities may not."""

    endpoint: str
    admin: services.S3Identity
    read_only: services.S3Identity
    list_only: services.S3Identity


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitedServer]:
    """A second, authenticated SeaweedFS with a read-only and a list-only identity."""
    token = uuid.uuid4().hex
    admin = services.S3Identity("admin", "limited-admin", "admin-secret-" + token)
    read_only = services.S3Identity(
        "reader", "limited-reader", "reader-secret-" + token, ("Read", "List")
    )
    list_only = services.S3Identity("lister", "limited-lister", "lister-secret-" + token, ("List",))
    base: Path = tmp_path_factory.mktemp("weed-limited")
    server = services.start_seaweedfs(
        access_key=admin.access_key,
        secret_key=admin.secret_key,
        base=base,
        identities=[read_only, list_only],
    )
    try:
        yield LimitedServer(server.endpoint, admin, read_only, list_only)
    finally:
        server.stop()

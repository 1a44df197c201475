"""Fixtures for the reliability suite: a scenario stack on the session's servers, and
scenario-owned servers (SeaweedFS, PostgreSQL, Redis) for the tests that stop them.

Sizes: the CI size by default; ``S3W_TEST_RELIABILITY_FULL=1`` (``nox -s reliability -- --full``)
runs the counts the issue names. Each scenario records its figure with
:func:`tests.support.results.record`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.services import SeaweedS3, running_seaweedfs
from tests.support.stack import Stack, stack

#: The shared Redis server's database for these tests (queues are also prefixed per stack).
REDIS_DB = 9


def redis_db_url(server_url: str, db: int = REDIS_DB) -> str:
    return f"{server_url.rstrip('/')}/{db}"


@pytest.fixture
def make_stack(
    pg_server_url: str,
    s3_service: Any,
    redis_server_url: str,
    tmp_path: Path,
) -> Iterator[Callable[..., Stack]]:
    """``make_stack(extra_env=..., s3=..., broker_url=..., pg_server_url=...)`` -> a Stack
    with its own database, bucket, media root and queue prefix (cleaned up after)."""
    with contextlib.ExitStack() as exits:

        def make(
            *,
            extra_env: dict[str, str] | None = None,
            s3: Any | None = None,
            broker_url: str | None = None,
            pg_url: str | None = None,
            bucket: str | None = None,
        ) -> Stack:
            tmp = tmp_path / f"stack-{uuid.uuid4().hex[:6]}"
            tmp.mkdir()
            return exits.enter_context(
                stack(
                    pg_server_url=pg_url or pg_server_url,
                    s3=s3 or s3_service,
                    broker_url=broker_url or redis_db_url(redis_server_url),
                    tmp=tmp,
                    extra_env=extra_env,
                    bucket=bucket,
                )
            )

        yield make


@pytest.fixture
def own_weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A SeaweedFS of this test's own, which it may stop and start."""
    with running_seaweedfs(tmp_path_factory.mktemp("rel-weed"), "rel") as server:
        yield server


@pytest.fixture
def own_weed_s3(own_weed: SeaweedS3) -> Any:
    from tests.conftest import S3Service

    return S3Service(own_weed.endpoint, own_weed.access_key, own_weed.secret_key)

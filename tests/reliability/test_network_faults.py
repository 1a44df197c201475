"""Network faults between s3w and S3, injected by a proxy on loopback (tests/support/proxy.py).

A real S3 server cannot be made to reset connections, throttle or stall on demand, so these
go through :class:`FaultProxy` in front of SeaweedFS. For each fault (connection reset,
``503 SlowDown``, no answer past the read timeout), with ``PM_S3_MAX_ATTEMPTS=3``:

- two faults, then the real server: the upload succeeds on the 3rd attempt;
- the fault every time: after exactly 3 attempts a clear, transient ``StorageUnavailable``
  that names the key and the endpoint;
- and a worker task behind a throttling proxy: bounded by ``S3W_TASK_MAX_RETRIES`` x
  ``PM_S3_MAX_ATTEMPTS`` requests, then ``failed`` with the reason in its log line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.support import papermerge as pm
from tests.support.proxy import FaultProxy
from tests.support.results import record
from tests.support.stack import Stack, bulk_documents

ATTEMPTS = 3
#: What the error says for each fault (besides the key and the endpoint).
SAYS = {
    "reset": r"did not answer in full",
    "503": r"SlowDown|503|slow down|throttl",
    "slow": r"within the read timeout \(PM_S3_READ_TIMEOUT\)",
}


def _storage(endpoint: str, monkeypatch: pytest.MonkeyPatch, read_timeout: float = 3) -> Any:
    """Storage through ``endpoint``; the read timeout is short only where a test waits for
    it to pass (elsewhere a loaded machine's SeaweedFS may take seconds to answer)."""
    monkeypatch.setenv("PM_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("PM_S3_MAX_ATTEMPTS", str(ATTEMPTS))
    monkeypatch.setenv("PM_S3_RETRY_MODE", "standard")
    monkeypatch.setenv("PM_S3_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("PM_S3_READ_TIMEOUT", str(read_timeout))
    from s3w_storage.client import make_client
    from s3w_storage.objects import Storage
    from s3w_storage.settings import load_settings

    settings = load_settings()
    return Storage(make_client(settings), settings)


def _port(endpoint: str) -> int:
    port = urlsplit(endpoint).port
    assert port is not None
    return port


@pytest.mark.parametrize("fault", ["reset", "503", "slow"])
def test_fault_then_recovery_and_fault_every_time(
    fault: str,
    storage_env: dict[str, str],
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from s3w_storage.errors import StorageUnavailable

    upstream = _port(storage_env["PM_S3_ENDPOINT_URL"])
    read_timeout = 3 if fault == "slow" else 15
    with FaultProxy(upstream, script=[fault] * (ATTEMPTS - 1), then="pass") as proxy:
        storage = _storage(proxy.url, monkeypatch, read_timeout)
        storage.upload_bytes(b"%PDF-1.4 recovered", "docvers/ok.pdf")
        recovered = list(proxy.actions)
    assert recovered == [fault] * (ATTEMPTS - 1) + ["pass"]
    body = s3.get_object(Bucket=bucket, Key="docvers/ok.pdf")["Body"].read()
    assert body == b"%PDF-1.4 recovered"

    with FaultProxy(upstream, then=fault, hold=20) as proxy:
        storage = _storage(proxy.url, monkeypatch, read_timeout)
        with pytest.raises(StorageUnavailable) as raised:
            storage.upload_bytes(b"%PDF-1.4 lost", "docvers/never.pdf")
        attempts = proxy.attempts
    message = str(raised.value)
    record(
        f"Network fault via proxy: {fault}",
        result=(
            f"{ATTEMPTS - 1} faults then success on attempt {len(recovered)}; fault every "
            f"time: StorageUnavailable after {attempts} attempts"
        ),
        figure=f"error: {message[:160]}",
        attempts=attempts,
    )
    assert attempts == ATTEMPTS, proxy.actions
    assert raised.value.transient
    assert "docvers/never.pdf" in message, message
    assert proxy.url in message or f"127.0.0.1:{proxy.port}" in message, message
    assert re.search(SAYS[fault], message), message
    assert s3.list_objects_v2(Bucket=bucket, Prefix="docvers/never").get("KeyCount") == 0


def test_worker_behind_a_throttling_proxy_gives_up_within_bounds(
    make_stack: Callable[..., Stack], s3_service: Any, bucket: str
) -> None:
    from tests.conftest import S3Service

    retries, per_call = 2, 2
    with FaultProxy(_port(s3_service.endpoint), then="503") as proxy:
        via = S3Service(proxy.url, s3_service.access_key, s3_service.secret_key)
        st = make_stack(
            s3=via,
            bucket=bucket,
            extra_env={
                "PM_S3_MAX_ATTEMPTS": str(per_call),
                "S3W_TASK_MAX_RETRIES": str(retries),
            },
        )
        user = pm.insert_user(st.db_url)
        (row,) = bulk_documents(st.db_url, user, ["throttled.pdf"])
        st.write_media(row, b"%PDF-1.4 throttled")
        st.start_worker(concurrency=1)
        before = proxy.attempts
        task = st.send("s3_worker_add_doc_vers", doc_ver_ids=[str(row.version_id)])
        assert st.wait_for_outcomes([task], timeout=120) == {task: "failed"}
        requests = proxy.attempts - before
        line = next(line for line in st.failure_lines() if task in line)
    record(
        "Worker task behind a proxy answering 503 SlowDown",
        result=(f"failed after {retries} task retries x {per_call} attempts = {requests} requests"),
        figure=f"log: {line[:160]}",
        requests=requests,
    )
    assert requests == (retries + 1) * per_call, proxy.actions
    assert st.retries() == retries
    assert re.search(SAYS["503"], line), line

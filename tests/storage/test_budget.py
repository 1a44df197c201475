"""The memory budget: however many threads move objects, the bodies they hold at once stay
within ``PM_S3_MAX_BUFFER_MB``, and every byte still arrives."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from s3w_storage.budget import ByteBudget
from s3w_storage.client import make_client
from s3w_storage.objects import Storage
from s3w_storage.settings import load_settings

MiB = 1 << 20


def test_threads_never_hold_more_than_the_limit_together() -> None:
    budget = ByteBudget(10)
    inside: list[int] = []
    lock = threading.Lock()
    go = threading.Barrier(8)

    def work(size: int) -> None:
        go.wait()
        for _ in range(50):
            with budget.hold(size), lock:
                inside.append(budget.used)

    threads = [threading.Thread(target=work, args=(3 + i % 4,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a hold waited forever"
    assert len(inside) == 8 * 50
    assert max(inside) <= 10
    assert budget.peak <= 10
    assert budget.used == 0


def test_a_hold_larger_than_the_limit_runs_alone_instead_of_waiting_forever() -> None:
    budget = ByteBudget(10)
    with budget.hold(25):
        assert budget.used == 25
    assert budget.used == 0


@pytest.mark.slow
def test_upload_many_and_downloads_stay_within_the_budget(
    storage_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 threads and files of 5-9 MiB under a 16 MiB budget: at most a few bodies at once,
    every object byte-identical, every download verified."""
    monkeypatch.setenv("PM_S3_MAX_BUFFER_MB", "16")
    monkeypatch.setenv("PM_S3_MAX_CONCURRENCY", "64")
    settings = load_settings()
    storage = Storage(make_client(settings), settings)
    items: list[tuple[str | os.PathLike[str], str]] = []
    digests = {}
    for i in range(12):
        path = tmp_path / f"{i}.bin"
        path.write_bytes(os.urandom((5 + i % 5) * MiB))
        items.append((path, f"budget/{i}.bin"))
        digests[f"budget/{i}.bin"] = hashlib.sha256(path.read_bytes()).hexdigest()
    assert storage.upload_many(items) == [(key, None) for _path, key in items]
    budget = storage.data.buffers
    assert 0 < budget.peak <= 16 * MiB, f"held {budget.peak} bytes at once"
    for _path, key in items:
        target = tmp_path / "back" / key
        storage.download_file(key, target)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == digests[key]
    assert budget.peak <= 16 * MiB
    assert budget.used == 0

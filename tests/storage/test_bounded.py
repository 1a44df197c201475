"""``bounded_map``: the results of ``pool.map``, in order, with a bounded number of calls
submitted (the sync and migrate use it so that memory stays flat with the file count)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from s3w_storage.bounded import bounded_map


def test_results_in_order_with_at_most_a_window_of_items_taken_ahead() -> None:
    taken = 0
    ahead: list[int] = []

    def items() -> Iterator[int]:
        nonlocal taken
        for n in range(1_000):
            taken += 1
            yield n

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = []
        for value in bounded_map(pool, lambda n: n * n, items(), 8):
            results.append(value)
            ahead.append(taken - len(results))
    assert results == [n * n for n in range(1_000)]
    assert max(ahead) <= 8


def test_an_early_stop_cancels_the_calls_not_started() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def work(n: int) -> int:
        if n == 1:
            gate.wait(10)  # holds the only thread while the consumer stops
        calls.append(n)
        return n

    with ThreadPoolExecutor(max_workers=1) as pool:
        mapped = bounded_map(pool, work, range(1_000), 4)
        assert next(mapped) == 0
        mapped.close()  # the consumer stops (an interrupt, an error)
        gate.set()
    # Item 1 may have started; 2 and 3 were submitted but cancelled; nothing later was taken.
    assert calls in ([0], [0, 1])

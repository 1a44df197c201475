"""``pool.map`` with a window: at most so many calls submitted at a time."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(
    pool: Executor, func: Callable[[T], R], items: Iterable[T], window: int
) -> Iterator[R]:
    """The results of ``func`` over ``items`` in order, as ``pool.map`` gives them, with at
    most ``window`` calls submitted at a time: memory stays bounded whatever the number of
    items, and an interrupt stops the run soon (calls not yet started are cancelled)."""
    pending: deque[Future[R]] = deque()
    queue = iter(items)
    try:
        while True:
            for item in queue:
                pending.append(pool.submit(func, item))
                if len(pending) >= max(1, window):
                    break
            if not pending:
                return
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()

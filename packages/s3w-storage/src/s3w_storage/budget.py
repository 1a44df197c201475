"""The memory a process may hold in object bodies at once (``PM_S3_MAX_BUFFER_MB``), shared by
every thread of the data plane, so that concurrency never multiplies into unbounded memory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ByteBudget:
    """Threads hold byte counts against one limit and wait while the rest is held. A single
    hold larger than the limit waits until it is alone, so no request waits forever."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.used = 0
        self.peak = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        size = max(0, size)
        with self._changed:
            while self.used and self.used + size > self.limit:
                self._changed.wait()
            self.used += size
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._changed:
                self.used -= size
                self._changed.notify_all()

    def __getstate__(self) -> dict[str, int]:  # a new process starts with nothing held
        return {"limit": self.limit}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__(state["limit"])  # type: ignore[misc]


_BUDGETS: dict[int, ByteBudget] = {}
_LOCK = threading.Lock()


def budget_for(limit: int) -> ByteBudget:
    """The process's budget for ``limit`` bytes: every store with the same settings shares it."""
    with _LOCK:
        found = _BUDGETS.get(limit)
        if found is None:
            found = _BUDGETS[limit] = ByteBudget(limit)
        return found

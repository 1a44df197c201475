"""One object per process (a client, an engine), built on first use and again after a fork."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """``build()`` once per process: a forked child (a Celery pool process) builds its own.

    ``on_fork(inherited)`` is called with the parent's object when the child first asks (an
    engine drops its pool without closing the parent's sockets); ``on_clear(obj)`` when
    :meth:`cache_clear` drops this process's own object (tests reset settings with it).
    """

    def __init__(
        self,
        build: Callable[[], T],
        *,
        on_fork: Callable[[T], None] | None = None,
        on_clear: Callable[[T], None] | None = None,
    ) -> None:
        self._build = build
        self._on_fork = on_fork
        self._on_clear = on_clear
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._value: T | None = None

    def __call__(self) -> T:
        pid = os.getpid()
        with self._lock:
            if self._value is not None and self._pid != pid:
                if self._on_fork is not None:
                    self._on_fork(self._value)
                self._value = None
            if self._value is None:
                self._value = self._build()
                self._pid = pid
            return self._value

    def cache_clear(self) -> None:
        """Forget this process's object (``on_clear`` first, when it was built here)."""
        with self._lock:
            value, mine = self._value, self._pid == os.getpid()
            self._value = None
            self._pid = None
        if value is not None and mine and self._on_clear is not None:
            self._on_clear(value)

"""A resource that belongs to one process: built on first use after any fork, by one thread.

Connection pools, thread pools and Redis clients must never cross a fork
(gunicorn's workers, Celery's prefork pool): their sockets and threads would be
shared with the parent or lost. Every such resource of the service (the
database engine, the peer pools, the rate limiter's storage, the wake-up flag's
client, the peer calls' event loop) is held by a `ProcessLocal`, so there is one way
to get this right.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class ProcessLocal(Generic[T]):
    """`get()` returns this process's value, made by `factory` the first time this process asks.

    `on_fork(value)` is called with a value inherited from the parent before the
    new one is made (e.g. to drop a pool's connections without closing the
    parent's sockets). One thread builds it: some factories import lazily and
    are not safe to run twice at once.
    """

    def __init__(self, factory: Callable[[], T], on_fork: Callable[[T], None] | None = None):
        self._factory, self._on_fork = factory, on_fork
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._value: T | None = None

    def get(self) -> T:
        """The value of the current process."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    if self._value is not None and self._on_fork is not None:
                        self._on_fork(self._value)
                    self._value = self._factory()
                    self._pid = os.getpid()
        return self._value

    def peek(self) -> T | None:
        """The value if this process made one, else None (for shutdown)."""
        return self._value if self._pid == os.getpid() else None

    def forget(self) -> None:
        """Drop the value; the next `get()` makes a new one."""
        with self._lock:
            self._value, self._pid = None, None

"""Requests per client in fixed windows, counted by every API process together in Redis, without a
round trip per request.

Why not the `limits` library's own Redis storage (a round trip per request):
against it, this saves about 11 % of the API's CPU per submission (the median
of seven alternating sets of the submission bench: bench/README.md, "Machinery,
measured"). Each process counts its own requests at once, in memory, and a
background thread adds them to the shared counts in Redis every `sync_seconds`,
in one pipelined round trip for all the clients it saw, reading the shared
totals back. A request is judged on the last shared total this process read
plus what it counted since. The price: processes learn of each other's requests
up to `sync_seconds` late, so a client spread over several API processes can
get a few more requests through a window than the limit (at most what it sends
to the other processes within one sync). For abuse control that is close
enough; one process alone never lets more than the limit through.

When Redis cannot be reached, each process goes on counting on its own.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)


@dataclass
class _Window:
    """One client's count in one fixed window, as this process knows it."""

    number: int
    shared: int = 0  # the total Redis last answered (every process's requests added so far)
    sending: int = 0  # this process's requests on their way to Redis
    pending: int = 0  # this process's requests not yet sent

    @property
    def seen(self) -> int:
        return self.shared + self.sending + self.pending


class WindowCounts:
    """`limit` requests per `period` seconds per key, shared through Redis at `redis_url`."""

    def __init__(self, redis_url: str, limit: int, period: int, prefix: str, sync_seconds: float = 0.05):
        self.limit, self.period, self.prefix, self.sync_seconds = limit, period, prefix, sync_seconds
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._due = threading.Event()
        threading.Thread(target=self._sync_forever, name="rate-limit-sync", daemon=True).start()

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Count one request of `key`: None when it is allowed, else the seconds until its window ends."""
        now = time.time() if now is None else now
        number = int(now // self.period)
        with self._lock:
            window = self._windows.get(key)
            if window is None or window.number != number:
                window = self._windows[key] = _Window(number)
            if window.seen >= self.limit:
                return (number + 1) * self.period - now
            window.pending += 1
        self._due.set()
        return None

    def sync(self) -> None:
        """Add this process's new counts to Redis and read the totals back (one round trip)."""
        with self._lock:
            current = int(time.time() // self.period)
            for key in [key for key, window in self._windows.items() if window.number < current - 1]:
                del self._windows[key]  # ended a while ago: nothing more to learn about it
            sending = [(key, window.number, window.pending) for key, window in self._windows.items()
                       if window.pending]
            for key, _, count in sending:
                self._windows[key].sending, self._windows[key].pending = count, 0
        if not sending:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for key, number, count in sending:
                name = f"{self.prefix}:{key}:{number}"
                pipe.incrby(name, count)
                pipe.expire(name, self.period * 2)
            totals = pipe.execute()[::2]
        except redis.RedisError as exc:
            log.warning("rate limit counted by this process alone, its Redis is unreachable: %s", exc)
            totals = [None] * len(sending)
        with self._lock:
            for (key, number, count), total in zip(sending, totals):
                window = self._windows.get(key)
                if window is not None and window.number == number:
                    window.sending = 0
                    window.shared = total if total is not None else window.shared + count

    def _sync_forever(self) -> None:
        while True:
            self._due.wait()
            time.sleep(self.sync_seconds)  # gather what arrives meanwhile into the same round trip
            self._due.clear()
            try:
                self.sync()
            except Exception:  # the thread must outlive any surprise; the next request sets it going
                log.exception("rate limit sync failed")

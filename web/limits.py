"""Abuse control: a per-client rate limit (counted in Redis by every API process together) and
back-pressure on submissions.

A client is its customer id when authenticated, else its address. The counts
are the `limits` library's fixed windows in its Redis storage. When that Redis
is unreachable each process goes on counting on its own, in the library's
memory storage: a Redis outage must not stop orders being accepted (they are
safe in PostgreSQL).
"""
from __future__ import annotations

import logging
import math
import time

from flask import Flask, g, request
from flask_smorest import abort
from limits import parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter

from process_local import ProcessLocal
from settings import Settings
from web.backlog import Backlog

KEY_PREFIX = "orders-ratelimit"

log = logging.getLogger(__name__)


def _client_key() -> str:
    principal = g.get("principal")
    if principal is not None and principal.customer_id is not None:
        return f"customer:{principal.customer_id}"
    return f"addr:{request.remote_addr}"


class _Limiters:
    """This process's limiters: the shared one (Redis) and its stand-in while Redis is out (memory)."""

    def __init__(self, redis_url: str):
        storage = RedisStorage(redis_url, key_prefix=KEY_PREFIX, wrap_exceptions=True,
                               socket_timeout=1, socket_connect_timeout=1)
        self.shared = FixedWindowRateLimiter(storage)
        self.local = FixedWindowRateLimiter(MemoryStorage())


class RateLimit:
    """`RATE_LIMIT` per client in fixed windows."""

    def __init__(self, settings: Settings, exempt_blueprints=()):
        self.item = parse(settings.rate_limit)
        self.exempt = {blueprint.name for blueprint in exempt_blueprints}
        # Built in the process that counts (it holds a Redis pool).
        self._limiters = ProcessLocal(lambda: _Limiters(settings.redis_url))

    def check(self) -> None:
        """Count this request against its client; 429 with Retry-After once the window is spent."""
        if request.endpoint is None or request.blueprint in self.exempt:
            return
        key, limiters = _client_key(), self._limiters.get()
        try:
            limiter = limiters.shared
            allowed = limiter.hit(self.item, key)
        except StorageError as exc:
            log.debug("rate limit counted by this process alone, its Redis is unreachable: %s", exc)
            limiter = limiters.local
            allowed = limiter.hit(self.item, key)
        if not allowed:
            try:
                wait = limiter.get_window_stats(self.item, key).reset_time - time.time()
            except StorageError:
                wait = self.item.get_expiry()
            abort(429, message=f"Rate limit exceeded: {self.item}", headers={"Retry-After": str(max(1, math.ceil(wait)))})


def init_app(app: Flask, settings: Settings, exempt_blueprints=()) -> None:
    """Apply the limit to every route but the exempt blueprints (after authentication: the key is the caller)."""
    app.before_request(RateLimit(settings, exempt_blueprints).check)


class BackPressure:
    """Refuses new submissions while too many jobs are unfinished (the `Backlog`'s count)."""

    def __init__(self, limit: int, backlog: Backlog):
        self.limit, self.backlog = limit, backlog

    def check(self) -> None:
        """503 with Retry-After when the backlog is over the limit."""
        count = self.backlog.count()
        if count >= self.limit:
            abort(503, message=f"{count} orders are still being processed; try again shortly",
                  headers={"Retry-After": "5"})

"""Abuse control: a per-client rate limit (the `limits` library on Redis) and back-pressure on submissions.

A client is its customer id when authenticated, else its address. When the
limit's Redis is unreachable, requests are let through: a Redis outage must not
stop orders being accepted (they are safe in PostgreSQL).

The service needs one limit per client, so it calls `limits` directly: one
Redis round trip per request. Flask-Limiter (built on the same library) spent
more CPU per request resolving which of its many limit kinds applied than the
count itself cost.
"""
from __future__ import annotations

import logging
import time

from flask import Flask, g, request
from flask_smorest import abort
from limits import parse, storage, strategies
from limits.errors import StorageError
from process_local import ProcessLocal
from settings import Settings
from web.backlog import Backlog

log = logging.getLogger(__name__)
KEY_PREFIX = "orders-ratelimit"
# A Redis that hangs must not hold requests: the limit gives up and lets them through. Its errors,
# whatever the client library raised, arrive as limits' StorageError.
STORAGE_OPTIONS = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, "wrap_exceptions": True}


def _client_key() -> str:
    principal = g.get("principal")
    if principal is not None and principal.customer_id is not None:
        return f"customer:{principal.customer_id}"
    return f"addr:{request.remote_addr}"


class RateLimit:
    """`RATE_LIMIT` per client in fixed windows, counted in Redis by every API process together."""

    def __init__(self, settings: Settings, exempt_blueprints=()):
        self.item = parse(settings.rate_limit)
        self.uri = settings.redis_url
        self.exempt = {blueprint.name for blueprint in exempt_blueprints}
        # Made by one thread: `limits` imports its Redis client lazily, and two threads at once can
        # see it half-done.
        self._counter = ProcessLocal(lambda: strategies.FixedWindowRateLimiter(
            storage.storage_from_string(self.uri, **STORAGE_OPTIONS)))

    @property
    def counter(self) -> strategies.FixedWindowRateLimiter:
        """This process's counter (its Redis pool is made after any fork, never inherited)."""
        return self._counter.get()

    def check(self) -> None:
        """Count this request against its client; 429 with Retry-After once the window is spent."""
        if request.endpoint is None or request.blueprint in self.exempt:
            return
        key = _client_key()
        try:
            if self.counter.hit(self.item, KEY_PREFIX, key):
                return
            retry_after = max(1, int(self.counter.get_window_stats(self.item, KEY_PREFIX, key).reset_time - time.time()))
        except StorageError as exc:
            log.warning("rate limit not counted, its Redis is unreachable: %s", exc)
            return
        abort(429, message=f"Rate limit exceeded: {self.item}", headers={"Retry-After": str(retry_after)})


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

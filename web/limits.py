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
import os
import threading
import time

from flask import Flask, g, request
from flask_smorest import abort
from limits import parse, storage, strategies
from limits.errors import StorageError
from settings import ConfigError, Settings
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


def _storage(settings: Settings) -> str:
    """The limit's Redis: RATE_LIMIT_STORAGE_URI, else the broker when the broker is Redis."""
    if settings.rate_limit_storage:
        return settings.rate_limit_storage
    if settings.broker_is_redis:
        return settings.broker_url
    raise ConfigError("RATE_LIMIT_STORAGE_URI is not set; with RabbitMQ as the broker the rate limiter "
                      "needs a Redis URL of its own (e.g. redis://redis:6379/0)")


class RateLimit:
    """`RATE_LIMIT` per client in fixed windows, counted in Redis by every API process together."""

    def __init__(self, settings: Settings, exempt_blueprints=()):
        self.item = parse(settings.rate_limit)
        self.uri = _storage(settings)
        self.exempt = {blueprint.name for blueprint in exempt_blueprints}
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._counter: strategies.FixedWindowRateLimiter | None = None

    @property
    def counter(self) -> strategies.FixedWindowRateLimiter:
        """This process's counter (its Redis pool is made after any fork, never inherited), made by
        one thread: `limits` imports its Redis client lazily, and two threads at once can see it half-done."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._counter = strategies.FixedWindowRateLimiter(
                        storage.storage_from_string(self.uri, **STORAGE_OPTIONS))
                    self._pid = os.getpid()
        return self._counter

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

    def check(self, session) -> None:
        """503 with Retry-After when the backlog is over the limit."""
        count = self.backlog.count(session)
        if count >= self.limit:
            abort(503, message=f"{count} orders are still being processed; try again shortly",
                  headers={"Retry-After": "5"})

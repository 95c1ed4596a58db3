"""Abuse control: per-client rate limits (Flask-Limiter on Redis) and back-pressure on submissions.

A client is its customer id when authenticated, else its address. When the
limiter's storage is unreachable, requests are let through: a Redis outage
must not stop orders being accepted (they are safe in PostgreSQL).
"""
from __future__ import annotations

import time

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_smorest import abort
from sqlalchemy import func, select

from models.jobs import UNFINISHED, Job
from settings import ConfigError, Settings


def _client_key() -> str:
    principal = g.get("principal")
    if principal is not None and principal.customer_id is not None:
        return f"customer:{principal.customer_id}"
    return f"addr:{request.remote_addr}"


limiter = Limiter(key_func=_client_key)


def _storage(settings: Settings) -> str:
    """The limiter's Redis: RATE_LIMIT_STORAGE_URI, else the broker when the broker is Redis."""
    if settings.rate_limit_storage:
        return settings.rate_limit_storage
    if settings.broker_is_redis:
        return settings.broker_url
    raise ConfigError("RATE_LIMIT_STORAGE_URI is not set; with RabbitMQ as the broker the rate limiter "
                      "needs a Redis URL of its own (e.g. redis://redis:6379/0)")


def init_app(app: Flask, settings: Settings, exempt_blueprints=()) -> None:
    """Apply the default limit to every route but the exempt blueprints."""
    app.config.update(
        RATELIMIT_DEFAULT=settings.rate_limit,
        RATELIMIT_STORAGE_URI=_storage(settings),
        # X-RateLimit-* on every answer would cost every request a second Redis round trip;
        # only a refused one is told when to come back (Retry-After, below).
        RATELIMIT_HEADERS_ENABLED=False,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_KEY_PREFIX="orders-ratelimit",
    )
    limiter.init_app(app)
    for blueprint in exempt_blueprints:
        limiter.exempt(blueprint)

    @app.after_request
    def _retry_after(response):
        """A 429 says when the client's window resets."""
        if response.status_code == 429 and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = str(_seconds_to_reset())
        return response


def _seconds_to_reset() -> int:
    try:
        current = limiter.current_limit
        return max(1, current.reset_at - int(time.time())) if current else 1
    except Exception:  # the limiter's Redis went away meanwhile: a short wait is a fine guess
        return 1


class BackPressure:
    """Refuses new submissions while too many jobs are unfinished; the count is cached briefly."""

    def __init__(self, limit: int, ttl: float = 1.0):
        self.limit, self.ttl = limit, ttl
        self._count, self._read_at = 0, float("-inf")

    def check(self, session) -> None:
        """503 with Retry-After when the backlog is over the limit."""
        now = time.monotonic()
        if now - self._read_at > self.ttl:
            self._count = session.scalar(select(func.count()).select_from(Job).where(Job.status.in_(UNFINISHED)))
            self._read_at = now
        if self._count >= self.limit:
            abort(503, message=f"{self._count} orders are still being processed; try again shortly",
                  headers={"Retry-After": "5"})

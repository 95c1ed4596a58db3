"""Abuse control: a per-client rate limit (counted in Redis by every API process together) and
back-pressure on submissions.

A client is its customer id when authenticated, else its address. The counts
live in `web.window_counts`: no Redis round trip per request. When the limit's
Redis is unreachable each process goes on counting on its own: a Redis outage
must not stop orders being accepted (they are safe in PostgreSQL).
"""
from __future__ import annotations

import math

from flask import Flask, g, request
from flask_smorest import abort
from limits import parse

from process_local import ProcessLocal
from settings import Settings
from web.backlog import Backlog
from web.window_counts import WindowCounts

KEY_PREFIX = "orders-ratelimit"


def _client_key() -> str:
    principal = g.get("principal")
    if principal is not None and principal.customer_id is not None:
        return f"customer:{principal.customer_id}"
    return f"addr:{request.remote_addr}"


class RateLimit:
    """`RATE_LIMIT` per client in fixed windows."""

    def __init__(self, settings: Settings, exempt_blueprints=()):
        self.item = parse(settings.rate_limit)
        self.exempt = {blueprint.name for blueprint in exempt_blueprints}
        # Built in the process that counts (it runs a thread and holds a Redis pool).
        self._counts = ProcessLocal(lambda: WindowCounts(settings.redis_url, self.item.amount,
                                                          self.item.get_expiry(), KEY_PREFIX))

    @property
    def counts(self) -> WindowCounts:
        """This process's counts."""
        return self._counts.get()

    def check(self) -> None:
        """Count this request against its client; 429 with Retry-After once the window is spent."""
        if request.endpoint is None or request.blueprint in self.exempt:
            return
        wait = self.counts.hit(_client_key())
        if wait is not None:
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

"""How many jobs are unfinished: what back-pressure refuses submissions on, and what tells a client
how long a queued job may wait (its Retry-After).

Counting is cheap (the partial index on unfinished jobs) but not free, and every submission and
every poll of a queued job wants the number, so each process counts at most once a `ttl`.
"""
from __future__ import annotations

import time

from sqlalchemy import func, select

from models import due
from models.jobs import Job
from web.extensions import db

# Scanned from the due floor: every unfinished job is at or above it.
_COUNT = select(func.count()).select_from(Job).where(due.WAITING_UNFINISHED, Job.next_run_at >= due.SINCE)


class Backlog:
    """The number of unfinished jobs, read at most once a `ttl` seconds by this process."""

    def __init__(self, ttl: float = 1.0):
        self.ttl = ttl
        self._count, self._read_at = 0, float("-inf")

    def count(self) -> int:
        """The latest count, read in the current request when stale (two threads may both refresh it at
        once: harmless, both read the truth)."""
        now = time.monotonic()
        if now - self._read_at > self.ttl:
            self._count = db.scalar(_COUNT, {"since": due.floor.since(db)})
            self._read_at = now
        return self._count

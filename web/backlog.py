"""How many jobs are unfinished: what back-pressure refuses submissions on, and what tells a client
how long a queued job may wait (its Retry-After).

Counting is cheap (the partial index on unfinished jobs) but not free: it visits every unfinished
job, and, while something holds an old snapshot, every index entry of the jobs finished since.
Every submission and every poll of a queued job wants the number, so each process counts at most
once a `ttl`, and after its first count never in a request: a request that finds the count stale
answers with it and has the process's counting thread count again. Counted in the request, it was the
one slow request a second per process (see bench/README.md, "Submission latency under a steady
load").
"""
from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from models import due
from models.db import Database, first_line
from models.jobs import Job
from process_local import ProcessLocal
from web.extensions import db

log = logging.getLogger(__name__)

# Scanned from the due floor: every unfinished job is at or above it.
_COUNT = select(func.count()).select_from(Job).where(due.WAITING_UNFINISHED, Job.next_run_at >= due.SINCE)


class Backlog:
    """The number of unfinished jobs, read at most once a `ttl` seconds by this process."""

    def __init__(self, database: Database, ttl: float = 1.0):
        self.database, self.ttl = database, ttl
        self._count: int | None = None
        self._read_at = float("-inf")
        self._due = threading.Event()
        self._counter = ProcessLocal(self._start_counting)  # this process's counting thread

    def count(self) -> int:
        """The latest count: the process's first is read in the current request, later ones by the
        process's counting thread when the latest is older than `ttl` (this request answers with it)."""
        if self._count is None:
            self._count, self._read_at = db.scalar(_COUNT, {"since": due.floor.since(db)}), time.monotonic()
            return self._count
        count = self._count
        if time.monotonic() - self._read_at > self.ttl:
            self._counter.get()
            self._due.set()
        return count

    def _start_counting(self) -> threading.Thread:
        """Started once per process, not per count: starting a thread waits for it to run."""
        thread = threading.Thread(target=self._count_when_due, name="backlog-count", daemon=True)
        thread.start()
        return thread

    def _count_when_due(self) -> None:
        while True:
            self._due.wait()
            self._recount()
            self._due.clear()  # the requests that found the count stale meanwhile asked for this one

    def _recount(self) -> None:
        try:
            with self.database.autocommit_connection() as connection:
                since = due.floor.since(connection)
                self._count, self._read_at = connection.scalar(_COUNT, {"since": since}), time.monotonic()
        except DBAPIError as exc:  # an outage: the requests that need the database answer 503 meanwhile
            log.warning("could not count the backlog: %s", first_line(exc))

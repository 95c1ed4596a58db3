"""Where the scans of waiting jobs start: a floor on `next_run_at` that no waiting job lies below.

A waiting job is one still to run: unfinished (queued, processing, retrying), or
completed with its cart still to close. Every scan for them (the claim, the
backlog count, the queue gauges, the sweeper) reads a partial index on
`next_run_at` and starts at this floor instead of at the index's beginning.

Why: every change of a job writes a new row version, and an index entry of an
old version goes only when VACUUM removes that version. VACUUM cannot while a
snapshot older than it is held (a `pg_dump`, a long report, a session idle in a
transaction), so the partial indexes fill with entries of jobs long finished,
all with a `next_run_at` in the past. A scan from the beginning walks every one
of them: its cost grows with each order placed since the snapshot was taken,
until the workers fall behind. From the floor, a scan walks only the entries
near now, however old the oldest snapshot.

Why the floor holds: `next_run_at` is only ever set to a statement's `now()`
plus a delay of zero or more, and that statement commits within `SLACK`; the
floor is the earliest `next_run_at` of the waiting jobs at or above the previous
floor, and never later than `now()`. Scans start `SLACK` below it. A row that
breaks the promise (a commit slower than `SLACK`) is moved up to `now()` by the
sweeper's `BELOW_FLOOR` repair: it was due, and stays due.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import DateTime, bindparam, func, or_, select, update

from models.jobs import CART_PENDING, COMPLETED, UNFINISHED, Job

# How long a statement that sets `next_run_at` may take to commit before its row needs the repair.
SLACK = timedelta(seconds=5)
# How often a process reads the floor again (each read walks only what finished since the last one).
REFRESH_SECONDS = 1.0
# Before a process has read the floor: scan from the beginning.
BEGINNING = datetime(1970, 1, 1, tzinfo=timezone.utc)

SINCE = bindparam("since", type_=DateTime(timezone=True))

# SQL: the job is waiting to run (the predicates of the two partial indexes on next_run_at).
WAITING_UNFINISHED = Job.status.in_(UNFINISHED)
WAITING_CART = (Job.cart_status == CART_PENDING) & (Job.status == COMPLETED)

_earliest_unfinished = select(func.min(Job.next_run_at)).where(WAITING_UNFINISHED, Job.next_run_at >= SINCE)
_earliest_cart = select(func.min(Job.next_run_at)).where(WAITING_CART, Job.next_run_at >= SINCE)
# The new floor, from :since (the previous floor less SLACK): least() skips the NULL of an empty index.
_FLOOR = select(func.least(func.now(), _earliest_unfinished.scalar_subquery(), _earliest_cart.scalar_subquery()))

# The repair: waiting jobs below :since (the floor less SLACK), due now. It scans from the index's
# beginning, so the sweeper runs it seldom.
BELOW_FLOOR = (update(Job).where(or_(WAITING_UNFINISHED, WAITING_CART), Job.next_run_at < SINCE)
               .values(next_run_at=func.now()).returning(Job.id))


class DueFloor:
    """This process's floor, read at most once a `REFRESH_SECONDS`. A fork copies a floor that stays
    true, so one instance per module is right for every process kind."""

    def __init__(self, refresh_seconds: float = REFRESH_SECONDS):
        self.refresh_seconds = refresh_seconds
        self._floor = BEGINNING + SLACK
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def since(self, connection) -> datetime:
        """Where a scan of waiting jobs starts now (`:since`), reading the floor again when it is stale.
        `connection`: a Connection or Session that can run a statement now."""
        if time.monotonic() - self._read_at >= self.refresh_seconds and self._lock.acquire(blocking=False):
            try:
                self._floor = connection.scalar(_FLOOR, {"since": self._floor - SLACK})
                self._read_at = time.monotonic()
            finally:
                self._lock.release()
        return self._floor - SLACK


floor = DueFloor()

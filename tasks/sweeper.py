"""The safety net under the broker: when due jobs wait and nobody looks, send a wake-up.

Messages can vanish (Redis restarted without persistence, a publish while the
broker was down, a worker killed holding a message Redis only hands out again
after the visibility timeout). PostgreSQL knows every job that is due: a queued
or retrying job due for longer than the dispatch deadline, or a claimed job
(processing, or completed with its cart to close) whose execution's lease ran
out. Since an execution claims whatever is due in its lane, batch after batch,
and wakes another when a batch is full, the sweeper needs no job ids: one
wake-up for each lane with anything overdue. Every worker runs this loop; an
advisory lock lets one sweep at a time.

`repair_floor` keeps the due floor true (`models.due`): every `REPAIR_EVERY`
sweeps it moves any waiting job found below the floor up to now (that scan walks
the whole index, so it is the one scan not started at the floor, and runs seldom).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Interval, bindparam, func, or_, select, update

from models import due
from models.db import Database
from models.jobs import IMPORTS, PROCESSING, QUEUED, RETRYING, SINGLES, Job, in_lane
from models.locks import SWEEPER_LOCK_KEY, TRY_LOCK
from models.webhooks import PENDING, WebhookDelivery
from tasks.dispatch import enqueue_deliveries, wake_another

log = logging.getLogger(__name__)

BATCH = 500
# Sweeps between two repairs of the due floor.
REPAIR_EVERY = 12

# The statements are built once: every worker sweeps every SWEEP_INTERVAL_SECONDS, mostly to find
# nothing, and building them anew each time costs more than running them.
_NOW = func.now()
_LATE = _NOW - bindparam("dispatch_deadline", type_=Interval)

# How many jobs are overdue in each lane (at most BATCH: one wake-up is all they need): queued or
# retrying and due for longer than the dispatch deadline, or claimed (processing, or completed with
# the cart to close) with their execution's lease run out. Scanned from the due floor.
_overdue = select(in_lane(IMPORTS).label("imported")).where(Job.next_run_at >= due.SINCE, or_(
    Job.status.in_((QUEUED, RETRYING)) & (Job.next_run_at < _LATE),
    (Job.status == PROCESSING) & (Job.next_run_at < _NOW),
    due.WAITING_CART & (Job.next_run_at < _NOW),
)).limit(BATCH).subquery()
_OVERDUE_JOBS = select(func.count().filter(~_overdue.c.imported).label(SINGLES),
                       func.count().filter(_overdue.c.imported).label(IMPORTS))

# Pending deliveries due for longer than the dispatch deadline and not being sent: their wake-up was
# lost (or never published). Marked due now, so they are swept again only if this wake-up is lost too.
_OVERDUE_DELIVERIES = (
    update(WebhookDelivery)
    .where(WebhookDelivery.id.in_(
        select(WebhookDelivery.id).where(
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at < _LATE,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < _NOW),
        ).limit(BATCH)))
    .values(next_attempt_at=_NOW)
    .returning(WebhookDelivery.id)
)


def sweep(db: Database, dispatch_deadline: float) -> int:
    """Wake executions for overdue jobs and re-send overdue webhook deliveries; returns how many."""
    with db.connection() as connection:
        if not connection.execute(TRY_LOCK, {"key": SWEEPER_LOCK_KEY}).scalar():
            return 0
        since = due.floor.since(connection)
        params = {"dispatch_deadline": timedelta(seconds=dispatch_deadline), "since": since}
        by_lane = connection.execute(_OVERDUE_JOBS, params).one()._mapping
        overdue = sum(by_lane.values())
        woken = sum(wake_another(lane) for lane, count in by_lane.items() if count)
        # One statement, committed on its own (AUTOCOMMIT) before the deliveries' wake-ups go out.
        deliveries = enqueue_deliveries(connection.execute(_OVERDUE_DELIVERIES, params).scalars().all())
    if overdue or deliveries:
        log.info("sweeper found %d overdue job(s) (%d wake-up(s) sent) and re-sent %d webhook delivery(ies)",
                 overdue, woken, deliveries)
    return woken + deliveries


def repair_floor(db: Database) -> int:
    """Move every waiting job found below the due floor up to now (`models.due`); returns how many."""
    with db.connection() as connection:
        if not connection.execute(TRY_LOCK, {"key": SWEEPER_LOCK_KEY}).scalar():
            return 0
        below = connection.execute(due.BELOW_FLOOR, {"since": due.floor.since(connection)}).scalars().all()
    if below:
        log.warning("moved %d waiting job(s) found below the due floor up to now", len(below))
    return len(below)

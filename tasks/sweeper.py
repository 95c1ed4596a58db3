"""The safety net under the broker: when due jobs wait and nobody looks, send a wake-up.

Messages can vanish (Redis restarted without persistence, a publish while the
broker was down, a worker killed holding a message Redis only hands out again
after the visibility timeout). PostgreSQL knows every job that is due: a queued
or retrying job due for longer than the dispatch deadline, or a claimed job
(processing, or completed with its cart to close) whose execution's lease ran
out. Since an execution claims whatever is due, batch after batch, and wakes
another when a batch is full, the sweeper needs no job ids: one wake-up when
anything is overdue. Every worker runs this loop; an advisory lock lets one
sweep at a time.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Interval, bindparam, func, or_, select, update

from models.db import Database
from models.jobs import CART_PENDING, COMPLETED, PROCESSING, QUEUED, RETRYING, Job
from models.locks import SWEEPER_LOCK_KEY, TRY_LOCK
from models.webhooks import PENDING, WebhookDelivery
from tasks.dispatch import enqueue_deliveries, wake_another

log = logging.getLogger(__name__)

BATCH = 500

# The statements are built once: every worker sweeps every SWEEP_INTERVAL_SECONDS, mostly to find
# nothing, and building them anew each time cost more than running them.
_NOW = func.now()
_LATE = _NOW - bindparam("dispatch_deadline", type_=Interval)

# How many jobs are overdue (at most BATCH: one wake-up is all they need): queued or retrying and due
# for longer than the dispatch deadline, or claimed (processing, or completed with the cart to close)
# with their execution's lease run out.
_OVERDUE_JOBS = select(func.count()).select_from(
    select(Job.id).where(or_(
        Job.status.in_((QUEUED, RETRYING)) & (Job.next_run_at < _LATE),
        (Job.status == PROCESSING) & (Job.next_run_at < _NOW),
        (Job.status == COMPLETED) & (Job.cart_status == CART_PENDING) & (Job.next_run_at < _NOW),
    )).limit(BATCH).subquery())

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
    late = {"dispatch_deadline": timedelta(seconds=dispatch_deadline)}
    with db.connection() as connection:
        if not connection.execute(TRY_LOCK, {"key": SWEEPER_LOCK_KEY}).scalar():
            return 0
        overdue = connection.execute(_OVERDUE_JOBS, late).scalar()
        woken = int(wake_another()) if overdue else 0
        # One statement, committed on its own (AUTOCOMMIT) before the deliveries' wake-ups go out.
        deliveries = enqueue_deliveries(connection.execute(_OVERDUE_DELIVERIES, late).scalars().all())
    if overdue or deliveries:
        log.info("sweeper found %d overdue job(s) (%d wake-up(s) sent) and re-sent %d webhook delivery(ies)",
                 overdue, woken, deliveries)
    return woken + deliveries

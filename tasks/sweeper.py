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
import threading
from datetime import timedelta

from sqlalchemy import func, or_, select, update

from models.db import Database
from models.jobs import CART_PENDING, COMPLETED, PROCESSING, QUEUED, RETRYING, Job
from models.locks import SWEEPER_LOCK_KEY, TRY_LOCK
from models.webhooks import PENDING, WebhookDelivery
from observability import tracing
from tasks.dispatch import enqueue_deliveries, wake_another

log = logging.getLogger(__name__)

BATCH = 500


def sweep(db: Database, dispatch_deadline: float) -> int:
    """Wake executions for overdue jobs and re-send overdue webhook deliveries; returns how many."""
    with db.connection() as connection:
        if not connection.execute(TRY_LOCK, {"key": SWEEPER_LOCK_KEY}).scalar():
            return 0
        overdue = connection.execute(_overdue_jobs(dispatch_deadline)).scalar()
        woken = int(wake_another()) if overdue else 0
        deliveries = _sweep_deliveries(db, dispatch_deadline)
    if overdue or deliveries:
        log.info("sweeper found %d overdue job(s) (%d wake-up(s) sent) and re-sent %d webhook delivery(ies)",
                 overdue, woken, deliveries)
    return woken + deliveries


def _overdue_jobs(dispatch_deadline: float):
    now = func.now()
    late = now - timedelta(seconds=dispatch_deadline)
    return select(func.count()).select_from(
        select(Job.id).where(or_(
            Job.status.in_((QUEUED, RETRYING)) & (Job.next_run_at < late),
            (Job.status == PROCESSING) & (Job.next_run_at < now),
            (Job.status == COMPLETED) & (Job.cart_status == CART_PENDING) & (Job.next_run_at < now),
        )).limit(BATCH).subquery())


def _sweep_deliveries(db: Database, dispatch_deadline: float) -> int:
    """Pending deliveries due for longer than the dispatch deadline and not being sent: their
    wake-up was lost (or never published). Marked due now, so they are swept again only if
    this wake-up is lost too."""
    with db.transaction() as session:
        overdue = session.scalars(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.status == PENDING,
                    WebhookDelivery.next_attempt_at < func.now() - timedelta(seconds=dispatch_deadline),
                    or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < func.now()),
                ).limit(BATCH)))
            .values(next_attempt_at=func.now())
            .returning(WebhookDelivery.id)
        ).all()
    return enqueue_deliveries(overdue)


class SweeperThread(threading.Thread):
    """Runs `sweep` every `interval` seconds until stopped."""

    def __init__(self, db: Database, interval: float, dispatch_deadline: float):
        super().__init__(name="job-sweeper", daemon=True)
        self.db, self.interval, self.dispatch_deadline = db, interval, dispatch_deadline
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with tracing.untraced():
                    sweep(self.db, self.dispatch_deadline)
            except Exception:  # an outage must not kill the loop; the next tick tries again
                log.exception("sweep failed")

    def stop(self) -> None:
        self._stop.set()

"""The safety net under the broker: find jobs whose wake-up was lost and send another.

Messages can vanish (Redis restarted without persistence, a publish while Redis
was down, a worker killed holding a message Redis will only hand out again
after the visibility timeout). PostgreSQL knows every unfinished job and when it
is overdue; a job whose advisory lock is free is not running anywhere, so a new
wake-up is safe. Every worker runs this loop; an advisory lock lets one sweep at
a time.
"""
from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import func, or_, select, update

from models.db import Database
from models.jobs import CART_PENDING, COMPLETED, QUEUED, UNFINISHED, Job
from models.webhooks import PENDING, WebhookDelivery
from placement.locks import SWEEPER_LOCK_KEY, Locks, job_key
from tasks import app
from tasks.dispatch import enqueue, enqueue_deliveries

log = logging.getLogger(__name__)

BATCH = 500


def broker_backlog() -> int | None:
    """Messages waiting in the order queue, or None when the broker cannot say (down, unknown)."""
    try:
        with app.connection_for_read() as connection:
            return connection.default_channel.queue_declare(queue=app.conf.task_default_queue,
                                                            passive=True).message_count
    except Exception:
        return None


def sweep(db: Database, dispatch_deadline: float) -> int:
    """Dispatch every overdue job nobody is running and every overdue webhook delivery; returns how many."""
    with Locks.open(db.engine, wait_seconds=1) as locks:
        if not locks.try_acquire(SWEEPER_LOCK_KEY):
            return 0
        jobs = _sweep_jobs(db, locks, dispatch_deadline)
        deliveries = _sweep_deliveries(db, dispatch_deadline)
    if jobs or deliveries:
        log.info("sweeper re-dispatched %d overdue job(s) and %d webhook delivery(ies)", jobs, deliveries)
    return jobs + deliveries


def _sweep_jobs(db: Database, locks: Locks, dispatch_deadline: float) -> int:
    """A queued job whose deadline passed while messages still wait in the queue is
    most likely among them: it is left alone until the queue has drained, so a
    long backlog is not doubled by wake-ups that were never lost.
    """
    backlog = broker_backlog()
    waiting = UNFINISHED if not backlog else tuple(s for s in UNFINISHED if s != QUEUED)
    with db.transaction() as session:
        overdue = session.scalars(
            select(Job.id).where(
                or_(
                    Job.status.in_(waiting) & (Job.next_run_at < func.now()),
                    (Job.status == COMPLETED) & (Job.cart_status == CART_PENDING)
                    & (Job.updated_at < func.now() - timedelta(seconds=dispatch_deadline)),
                )
            ).order_by(Job.next_run_at).limit(BATCH)
        ).all()
    idle = [job_id for job_id in overdue if locks.is_free(job_key(job_id))]
    if not idle:
        return 0
    with db.transaction() as session:
        for job in session.scalars(select(Job).where(Job.id.in_(idle))):
            job.next_run_at = func.now() + timedelta(seconds=dispatch_deadline)
            job.updated_at = func.now()
    return sum(enqueue(job_id) for job_id in idle)


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
                sweep(self.db, self.dispatch_deadline)
            except Exception:  # an outage must not kill the loop; the next tick tries again
                log.exception("sweep failed")

    def stop(self) -> None:
        self._stop.set()

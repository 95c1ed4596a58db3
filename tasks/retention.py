"""Retention: finished jobs, with their timeline, ledger rows and webhook deliveries, are deleted once
older than RETENTION_DAYS, so storage stays bounded at a steady rate of orders (the sweeper's
sibling, run by every worker, one at a time under an advisory lock).

Orders are the shop's records and stay (`orders.job_id` keeps the id of the pruned job). Never
deleted: an unfinished job, a completed one whose cart is still to close, a job with a pending
ledger move or a pending webhook delivery, the placing job of an order whose cancellation is
still running (it gives back that job's ledger), a pending stock write, a write a move still
refers to. A replay outlives the job it replays (`replay_of` becomes NULL).

Each batch is one statement (one short transaction of its own) over at most `batch` jobs, taken
oldest first with SKIP LOCKED, so it never waits for a row someone holds and never holds one long.

A pass starts where the previous one stopped (`created_at` of the last row it deleted), not at the
oldest row: the rows it deleted stay in the index as dead entries for as long as a long snapshot is
held (a backup), and a pass from the beginning would walk them all again. Every `RESTART_EVERY`
passes it starts from the beginning, for the rows an earlier pass had to leave (a pending delivery,
a cart still closing).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Interval, bindparam, delete, exists, func, literal, or_, select
from sqlalchemy.orm import aliased

from models.db import Database
from models.due import BEGINNING
from models.events import JobEvent
from models.inventory import PENDING as LEDGER_PENDING
from models.inventory import InventoryMove, StockWrite
from models.jobs import (
    CANCELLED, CART_CLOSED, CART_NOT_NEEDED, COMPLETED, FAILED, REJECTED, UNFINISHED, Job,
)
from models.locks import RETENTION_LOCK_KEY, TRY_LOCK
from models.orders import Order
from models.webhooks import PENDING as DELIVERY_PENDING
from models.webhooks import WebhookAttempt, WebhookDelivery
from observability import metrics

log = logging.getLogger(__name__)

_jobs, _moves, _writes = Job.__table__, InventoryMove.__table__, StockWrite.__table__
_events, _deliveries, _attempts, _orders = (JobEvent.__table__, WebhookDelivery.__table__,
                                           WebhookAttempt.__table__, Order.__table__)
_CUTOFF = func.now() - bindparam("age", type_=Interval)
_BATCH = bindparam("batch")
_AFTER = bindparam("after")
# Passes between two that start from the oldest row.
RESTART_EVERY = 60
_cancellation = aliased(_jobs, name="cancellation")

# The oldest `batch` jobs that may go, locked (skipping any row someone holds).
_PRUNABLE_JOBS = (
    select(_jobs.c.id, _jobs.c.created_at)
    .where(
        _jobs.c.created_at.between(_AFTER, _CUTOFF),
        _jobs.c.updated_at < _CUTOFF,
        or_(_jobs.c.status.in_((REJECTED, FAILED, CANCELLED)),
            (_jobs.c.status == COMPLETED) & _jobs.c.cart_status.in_((CART_CLOSED, CART_NOT_NEEDED))),
        ~exists().where(_moves.c.job_id == _jobs.c.id, _moves.c.state == LEDGER_PENDING),
        ~exists().where(_deliveries.c.job_id == _jobs.c.id, _deliveries.c.status == DELIVERY_PENDING),
        ~exists().where(_orders.c.job_id == _jobs.c.id, _cancellation.c.cancels_order_id == _orders.c.id,
                        _cancellation.c.status.in_(UNFINISHED)),
    )
    .order_by(_jobs.c.created_at)
    .limit(_BATCH)
    .with_for_update(of=_jobs, skip_locked=True)
)


def _prune_jobs_statement():
    """One batch of jobs and every row that belongs to them, in one statement; how many of each went.

    PostgreSQL checks the foreign keys at the statement's end, when children and jobs are all gone."""
    doomed = _PRUNABLE_JOBS.cte("doomed")
    of_doomed = select(doomed.c.id)
    deliveries = select(_deliveries.c.id).where(_deliveries.c.job_id.in_(of_doomed))
    gone = {
        "webhook_attempts": delete(_attempts).where(_attempts.c.delivery_id.in_(deliveries)),
        "webhook_deliveries": delete(_deliveries).where(_deliveries.c.job_id.in_(of_doomed)),
        "job_events": delete(_events).where(_events.c.job_id.in_(of_doomed)),
        "inventory_moves": delete(_moves).where(_moves.c.job_id.in_(of_doomed)),
        "jobs": delete(_jobs).where(_jobs.c.id.in_(of_doomed)),
    }
    ctes = {table: statement.returning(literal(1)).cte(f"gone_{table}") for table, statement in gone.items()}
    return select(select(func.max(doomed.c.created_at)).scalar_subquery().label("last_created_at"),
                  *[select(func.count()).select_from(cte).scalar_subquery().label(table)
                    for table, cte in ctes.items()])


_PRUNE_JOBS = _prune_jobs_statement()

# One batch of the oldest stock writes that are settled and that no move refers to any more.
_PRUNE_WRITES = delete(_writes).where(_writes.c.id.in_(
    select(_writes.c.id)
    .where(_writes.c.created_at.between(_AFTER, _CUTOFF), _writes.c.updated_at < _CUTOFF, _writes.c.state != LEDGER_PENDING,
           ~exists().where(_moves.c.write_id == _writes.c.id))
    .order_by(_writes.c.created_at)
    .limit(_BATCH)
    .with_for_update(skip_locked=True)
)).returning(_writes.c.created_at)


def prune(db: Database, days: int, batch: int) -> dict[str, int]:
    """Delete, batch after batch, what is older than `days` and may go; the rows deleted by table
    (empty when another worker is pruning, or `days` is 0: keep everything)."""
    if days <= 0:
        return {}
    params = {"age": timedelta(days=days), "batch": batch}
    pruned: dict[str, int] = {}
    _resume.passes += 1
    if _resume.passes % RESTART_EVERY == 0:
        _resume.jobs = _resume.writes = BEGINNING
    with db.connection() as connection:
        if not connection.execute(TRY_LOCK, {"key": RETENTION_LOCK_KEY}).scalar():
            return {}
        while True:
            counts = connection.execute(_PRUNE_JOBS, {**params, "after": _resume.jobs}).one()._asdict()
            _resume.jobs = counts.pop("last_created_at") or _resume.jobs
            _count(pruned, counts)
            if counts["jobs"] < batch:
                break
        while True:
            writes = connection.execute(_PRUNE_WRITES, {**params, "after": _resume.writes}).scalars().all()
            _resume.writes = max(writes, default=_resume.writes)
            _count(pruned, {"stock_writes": len(writes)})
            if len(writes) < batch:
                break
    if pruned:
        log.info("retention pruned rows older than %d days: %s", days,
                 ", ".join(f"{count} {table}" for table, count in pruned.items()))
    return pruned


class _Resume:
    """Where this process's next pass starts, per table (a fork copies a point that stays right)."""

    passes = 0
    jobs = writes = BEGINNING


_resume = _Resume()


def _count(pruned: dict[str, int], counts: dict[str, int]) -> None:
    for table, count in counts.items():
        if count:
            pruned[table] = pruned.get(table, 0) + count
            metrics.rows_pruned.labels(table).inc(count)

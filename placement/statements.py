"""The SQL of an order's hot path, built once as Core statements.

Every order runs these a dozen times or more. Built at import, they are
compiled once and found in SQLAlchemy's cache after that; executed on the
session's connection, they skip the ORM's unit of work. Each one that changes
a job also writes its timeline event, in the same statement.
"""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Interval, bindparam, exists, func, insert, literal, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from models.events import JobEvent
from models.inventory import APPLIED, PENDING, PLANNED, InventoryMove
from models.jobs import COMPLETED, PROCESSING, UNFINISHED, Job
from models.orders import ORDERED, Order

jobs, job_events, moves, orders = Job.__table__, JobEvent.__table__, InventoryMove.__table__, Order.__table__

# What the outbox needs to describe a finished job.
_ENDED_JOB = (jobs.c.id, jobs.c.kind, jobs.c.status, jobs.c.customer_id, jobs.c.cancels_order_id, jobs.c.replay_of,
              jobs.c.error, jobs.c.callback_url)


def _logged(changed, event, detail=None):
    """The timeline event of a job change (a CTE returning id, status and attempts), as a CTE."""
    columns = [changed.c.id, event, changed.c.status, changed.c.attempts]
    names = ["job_id", "event", "status", "attempt"]
    if detail is not None:
        columns.append(detail)
        names.append("detail")
    return insert(job_events).from_select(names, select(*columns)).cte(f"{changed.name}_logged")


def _start():
    started = (
        update(jobs)
        .where(jobs.c.id == bindparam("job_id"), jobs.c.status.in_(UNFINISHED))
        .values(attempts=jobs.c.attempts + 1, status=PROCESSING, updated_at=func.now(),
                next_run_at=func.now() + bindparam("deadline", type_=Interval()))
        .returning(jobs.c.id, jobs.c.customer_id, jobs.c.kind, jobs.c.cancels_order_id, jobs.c.source,
                   jobs.c.requested_items, jobs.c["items"], jobs.c.resolution, jobs.c.error, jobs.c.status,
                   jobs.c.attempts, jobs.c.created_at,
                   exists().where(moves.c.job_id == jobs.c.id, moves.c.state != PLANNED).label("taken"))
        .cte("started")
    )
    return select(started).add_cte(_logged(started, literal("attempt_started")))


# Count an attempt on an unfinished job and mark it processing: the job as it then is, or no row.
START = _start()


@lru_cache(maxsize=None)
def step(changed: tuple[str, ...] = ()):
    """Record a step on the job (and these columns, as bound `new_<column>`) and in its timeline."""
    values = {name: bindparam(f"new_{name}", type_=jobs.c[name].type) for name in changed}
    moved = (update(jobs).where(jobs.c.id == bindparam("job_id"))
             .values(step=bindparam("new_step"), updated_at=func.now(), **values)
             .returning(jobs.c.id, jobs.c.status, jobs.c.attempts).cte("moved"))
    return select(moved.c.id).add_cte(_logged(moved, bindparam("event_name")))


# The order of a job, once: None when an earlier execution already inserted it.
NEW_ORDER = (pg_insert(orders)
             .values(customer_id=bindparam("customer_id"), job_id=bindparam("job_id"), status=ORDERED)
             .on_conflict_do_nothing(index_elements=[orders.c.job_id])
             .returning(orders.c.id))
ORDER_OF_JOB = select(orders.c.id).where(orders.c.job_id == bindparam("job_id"))


def _complete():
    completed = (
        update(jobs).where(jobs.c.id == bindparam("job_id"))
        .values(status=COMPLETED, step=bindparam("new_step"), error=null(), updated_at=func.now(),
                cart_status=bindparam("new_cart_status"))
        .returning(*_ENDED_JOB, jobs.c.attempts).cte("completed")
    )
    return select(completed).add_cte(
        _logged(completed, literal("order_saved"), func.jsonb_build_object("order_id", bindparam("order_id"))))


# Complete the job (with its "order_saved" event): the job as the outbox needs it.
COMPLETE = _complete()

# A product's writes of unknown outcome, and the job's own moves on it.
MOVES_SEEN = select(moves.c.id, moves.c.job_id, moves.c.product_id, moves.c.kind, moves.c.state, moves.c.quantity,
                    moves.c.quantity_before, moves.c.quantity_after, moves.c.etag_before).where(
    moves.c.product_id == bindparam("product_id"),
    or_(moves.c.state == PENDING, moves.c.job_id == bindparam("job_id")),
)


def _pending():
    statement = pg_insert(moves).values(
        job_id=bindparam("job_id"), product_id=bindparam("product_id"), kind=bindparam("kind"),
        quantity=bindparam("quantity"), state=PENDING, quantity_before=bindparam("before"),
        etag_before=bindparam("etag"), quantity_after=bindparam("after"))
    return statement.on_conflict_do_update(
        index_elements=[moves.c.job_id, moves.c.product_id, moves.c.kind],
        set_={"state": PENDING, "quantity_before": statement.excluded.quantity_before,
              "etag_before": statement.excluded.etag_before, "quantity_after": statement.excluded.quantity_after,
              "updated_at": func.now()},
    ).returning(moves.c.id)


# Ledger a write about to be sent: the move, pending, with what it is based on and asks for.
MOVE_PENDING = _pending()
MOVE_APPLIED = update(moves).where(moves.c.id == bindparam("move_id")).values(state=APPLIED, updated_at=func.now())
MOVE_NOT_APPLIED = update(moves).where(moves.c.id == bindparam("move_id")).values(
    state=PLANNED, quantity_before=None, quantity_after=None, etag_before=None, updated_at=func.now())

"""A job's life: every change of a job's state, in one place.

A job is one accepted submission, and the durable record the API answers
from. Its life: accepted (web) → claimed by an execution, in a batch → its
steps (items resolved, stock taken) → completed with its order, rejected,
failed, or scheduled for a retry; a completed job may still owe its cart's
closing. Every change here also records the job's timeline events
(`models.events`) and, where the job ends, the webhook deliveries it owes
(`webhooks.outbox`), in the same transaction: the timeline never claims what
did not happen, and no end goes unannounced.

The API's changes (accept a submission, a cancellation or a replay; cancel a
job that has not started) take the request's session and leave the commit to
it. The worker's take the execution's connection (in AUTOCOMMIT) and change
many jobs at once, one transaction per change; there a job is the row `claim`
returned.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import (
    Connection, Integer, Interval, Row, String, Text, Uuid, bindparam, case, cast, func, insert, literal, select, union,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from models import due
from models import events as timeline
from models.db import transaction
from models.events import JobEvent
from models.imports import Import
from models.jobs import (
    CANCELLED, CART_CLOSED, CART_FAILED, CART_NOT_NEEDED, CART_PENDING, COMPLETED, IMPORTS, KIND_CANCEL, KIND_PLACE,
    LANES, PROCESSING, QUEUED, RETRYING, SOURCE_BODY, SOURCE_CART, Job, in_lane,
)
from models.locks import try_lock_job, try_lock_job_for_transaction
from models.orders import CANCELLED as ORDER_CANCELLED
from models.orders import ORDERED, Order, OrderItem
from observability import tracing
from placement.items import normalize
from placement.outcomes import JobOutcome
from webhooks import outbox

jobs, job_events, orders, order_items = Job.__table__, JobEvent.__table__, Order.__table__, OrderItem.__table__

# Steps, as recorded on the job (and reported to Flower as the batch's state).
LOADING_ITEMS = "loading_items"
TAKING_STOCK = "taking_stock"
SAVING_ORDER = "saving_order"
UPDATING_CART = "updating_cart"
GIVING_BACK = "giving_back"
DONE = "done"


def age(job: Row) -> float:
    """Seconds since the job was submitted."""
    return (datetime.now(timezone.utc) - job.created_at).total_seconds()


# ---- claiming a batch ---------------------------------------------------------------------------

# How many batches' worth of import lines may be placed at once, by all the imports lane's executions
# together (lines beyond it wait); single orders' lane has no such bound. A single order that needs a
# product an import batch holds waits for that batch; with more than one in flight, import batches
# queue at the products (each holding those it got while it waits for the next) and hold them longer
# (sharing CPU with each other). bench bulk, 10,000 lines beside single orders: two in flight,
# single orders' p99 3.6-3.7 x idle, 214-242 orders/s; one, 3.0-3.2 x, 192-195 orders/s.
IMPORT_BATCHES_IN_FLIGHT = 1


def _claim_statement(lane: str):
    """Up to :limit due jobs of `lane`, each locked for this connection (a session advisory lock: free
    again the moment the holder's connection dies), marked processing with their attempt counted.

    Due: queued or retrying jobs whose time has come, processing jobs whose holder stopped
    reporting (its lease, `next_run_at`, passed) and this very task's own jobs (a redelivered
    task whose worker died: free at once), and completed jobs whose cart is still to be closed.
    Rows another claim is looking at are skipped (SKIP LOCKED); so are jobs whose lock is held.
    Oldest first, scanned from the due floor (`models.due`: the cost stays flat while a long
    snapshot is held).

    A lane's executions claim only its jobs (`models.jobs.SINGLES`). In the imports lane, lines
    are claimed while fewer than `IMPORT_BATCHES_IN_FLIGHT` batches' worth are being placed, and
    imports interleave with each other by their lines' due times (`IMPORT_STEP`).
    """
    now = func.now()
    limit = room = bindparam("limit", type_=Integer)
    of_lane = in_lane(lane)
    if lane == IMPORTS:
        # Being placed: claimed, and the lease of their execution still running (a dead one's are due again).
        importing = select(func.count()).where(jobs.c.status == PROCESSING, of_lane, jobs.c.next_run_at > now)
        room = func.greatest(0, func.least(limit, IMPORT_BATCHES_IN_FLIGHT * limit - importing.scalar_subquery()))
    fresh = (select(jobs.c.id).where(due.WAITING_UNFINISHED, jobs.c.next_run_at.between(due.SINCE, now), of_lane)
             .order_by(jobs.c.next_run_at).limit(room).with_for_update(skip_locked=True).cte("fresh"))
    mine = (select(jobs.c.id).where(jobs.c.status == PROCESSING, jobs.c.task_id == bindparam("task_id"))
            .with_for_update(skip_locked=True).cte("mine"))
    carts = (select(jobs.c.id).where(due.WAITING_CART, jobs.c.next_run_at.between(due.SINCE, now), of_lane)
             .order_by(jobs.c.next_run_at).limit(limit).with_for_update(skip_locked=True).cte("carts"))
    candidates = union(select(fresh.c.id), select(mine.c.id), select(carts.c.id)).subquery("candidates")
    locked = (select(candidates.c.id).where(try_lock_job(candidates.c.id))
              .cte("locked").prefix_with("MATERIALIZED"))
    running = jobs.c.status != COMPLETED
    claimed = (
        update(jobs).where(jobs.c.id.in_(select(locked.c.id)))
        .values(status=case((running, PROCESSING), else_=jobs.c.status),
                attempts=jobs.c.attempts + case((running, 1), else_=0),
                task_id=bindparam("task_id"), updated_at=now,
                next_run_at=now + bindparam("lease", type_=Interval()))
        .returning(*jobs.c, Job.order_id.expression.label("order_id")).cte("claimed")
    )
    started = insert(job_events).from_select(
        ["job_id", "event", "status", "attempt"],
        select(claimed.c.id, literal("attempt_started"), claimed.c.status, claimed.c.attempts)
        .where(claimed.c.status == PROCESSING)).cte("started")
    return select(claimed).add_cte(started).order_by(claimed.c.created_at, claimed.c.id)


CLAIMS = {lane: _claim_statement(lane) for lane in LANES}


def claim(connection: Connection, task_id: str, limit: int, lease: float, lane: str) -> list[Row]:
    """Claim a batch of `lane` for the execution `task_id`, oldest first: one statement."""
    return connection.execute(CLAIMS[lane], {"task_id": task_id, "limit": limit, "lease": timedelta(seconds=lease),
                                             "since": due.floor.since(connection)}).all()


# ---- changes of many jobs ----------------------------------------------------------------------
# Each change is one UPDATE run for many jobs (executemany; psycopg2's execute_batch sends them in
# one round trip, `models.db`) and their events, in one transaction. The SET clause is made of
# the keys of the rows given (SQLAlchemy's executemany form); `job_id` names the job.

_UPDATE = update(jobs).where(jobs.c.id == bindparam("job_id")).values(updated_at=func.now())
# The same, and due again :delay from now (a retry's backoff, a claim's lease).
_UPDATE_AND_DUE_IN = _UPDATE.values(next_run_at=func.now() + bindparam("delay", type_=Interval()))


def _change(connection: Connection, statement, changes: Sequence[dict], events: Sequence[dict]) -> None:
    """Update the jobs and record their events, in the caller's transaction."""
    if changes:
        connection.execute(statement, list(changes))
        timeline.record(connection, events)


def items_resolved(connection: Connection, taking: Sequence[tuple[Row, list[dict]]]) -> None:
    """Mark the jobs as taking stock with their items, kept (once resolved, a retry does not ask the
    cart again); the timeline's `checking_stock` for those resolved now, and `taking_stock`."""
    events = [timeline.event(job.id, "checking_stock", job.status, job.attempts, {"items": items})
              for job, items in taking if job.items is None]
    events += [timeline.event(job.id, "taking_stock", job.status, job.attempts) for job, _ in taking]
    with transaction(connection):
        _change(connection, _UPDATE, [{"job_id": job.id, "items": items, "step": TAKING_STOCK}
                                      for job, items in taking], events)


def retry_later(connection: Connection, retries: Sequence[tuple[Row, JobOutcome]]) -> None:
    """Jobs that try again after `outcome.retry_in` seconds: retrying, with the error that stopped
    them. A job that must end once it gave back what it took keeps (or gets) the error it will
    end with, and the status it ends with as its resolution."""
    rows = [{"job_id": job.id, "status": RETRYING, "delay": timedelta(seconds=outcome.retry_in),
             "error": outcome.error if outcome.ends_as or job.resolution is None else job.error,
             "resolution": outcome.ends_as or job.resolution,
             "step": GIVING_BACK if outcome.ends_as or job.resolution else job.step}
            for job, outcome in retries]
    events = [timeline.event(job.id, GIVING_BACK if outcome.ends_as else "retry_scheduled", RETRYING, job.attempts,
                             {**(outcome.error or {}), "retry_in_seconds": round(outcome.retry_in, 3)})
              for job, outcome in retries]
    with transaction(connection):
        _change(connection, _UPDATE_AND_DUE_IN, rows, events)


def cart_closing_later(connection: Connection, delays: Sequence[tuple[Row, float]]) -> None:
    """Completed jobs whose cart could not be closed yet: due again after their delay."""
    if delays:
        connection.execute(_UPDATE_AND_DUE_IN, [{"job_id": job.id, "delay": timedelta(seconds=delay)}
                                                for job, delay in delays])


def carts_closed(connection: Connection, results: Sequence[tuple[Row, bool]]) -> None:
    """Record each cart's closing: closed, or given up (the peer refused it for good)."""
    with transaction(connection):
        _change(connection, _UPDATE,
                [{"job_id": job.id, "cart_status": CART_CLOSED if closed else CART_FAILED, "step": DONE}
                 for job, closed in results],
                [timeline.event(job.id, "cart_closed" if closed else "cart_update_failed", COMPLETED, job.attempts)
                 for job, closed in results])


# ---- ends, with their outbox -------------------------------------------------------------------

@dataclass(frozen=True)
class Placed:
    """A job whose stock is taken: its order is saved with these items."""

    job: Row
    items: list[dict]


_NEW_ORDERS = (pg_insert(orders).on_conflict_do_nothing(index_elements=[orders.c.job_id])
               .returning(orders.c.id, orders.c.job_id))
_EXISTING_ORDERS = select(orders.c.id, orders.c.job_id).where(orders.c.job_id.in_(bindparam("job_ids", expanding=True)))


def complete(connection: Connection, placed: Sequence[Placed], lease: float) -> list[uuid.UUID]:
    """Save every placed job's order and items and complete the jobs, in one transaction; the
    webhook deliveries owed (publish their wake-ups after this returns). A cart job stays due to
    close its cart, which its execution does next (or a later one, after `lease`)."""
    if not placed:
        return []
    with transaction(connection):
        order_of = {row.job_id: row.id for row in connection.execute(_NEW_ORDERS, [
            {"customer_id": p.job.customer_id, "job_id": p.job.id, "status": ORDERED} for p in placed])}
        new = [p for p in placed if p.job.id in order_of]
        if len(new) < len(placed):  # an execution that died saved these orders, not their jobs' completion
            order_of.update({row.job_id: row.id for row in connection.execute(
                _EXISTING_ORDERS, {"job_ids": [p.job.id for p in placed if p.job.id not in order_of]})})
        if new:
            connection.execute(insert(order_items), [
                {"order_id": order_of[p.job.id], "product_id": item["product_id"], "quantity": item["quantity"]}
                for p in new for item in p.items])
        rows = []
        for p in placed:
            cart = p.job.source == SOURCE_CART
            rows.append({"job_id": p.job.id, "status": COMPLETED, "error": None, "resolution": None,
                         "step": UPDATING_CART if cart else DONE,
                         "cart_status": CART_PENDING if cart else CART_NOT_NEEDED, "delay": timedelta(seconds=lease)})
        _change(connection, _UPDATE_AND_DUE_IN, rows,
                [timeline.event(p.job.id, "order_saved", COMPLETED, p.job.attempts, {"order_id": order_of[p.job.id]})
                 for p in placed])
        return outbox.write_job_ends(connection, [outbox.JobEnd(p.job, COMPLETED, None, order_of[p.job.id])
                                                  for p in placed])


def end(connection: Connection, ends: Sequence[tuple[Row, JobOutcome]]) -> list[uuid.UUID]:
    """End jobs that took nothing (or gave it all back) as rejected or failed, with their error; the
    webhook deliveries owed."""
    if not ends:
        return []
    with transaction(connection):
        _change(connection, _UPDATE,
                [{"job_id": job.id, "status": outcome.status, "error": outcome.error, "resolution": None, "step": DONE}
                 for job, outcome in ends],
                [timeline.event(job.id, outcome.status, outcome.status, job.attempts, outcome.error)
                 for job, outcome in ends])
        return outbox.write_job_ends(connection, [outbox.JobEnd(job, outcome.status, outcome.error)
                                                  for job, outcome in ends])


def order_cancelled(connection: Connection, job: Row, order_id: int, placing_job: Row) -> list[uuid.UUID]:
    """A cancellation done: the order Cancelled, both jobs' timelines told, the webhooks owed."""
    with transaction(connection):
        connection.execute(update(orders).where(orders.c.id == order_id).values(status=ORDER_CANCELLED))
        _change(connection, _UPDATE, [{"job_id": job.id, "status": COMPLETED, "error": None, "step": DONE}], [
            timeline.event(job.id, "order_cancelled", COMPLETED, job.attempts, {"order_id": order_id}),
            timeline.event(placing_job.id, "order_cancelled", placing_job.status, 0,
                           {"order_id": order_id, "by_job": str(job.id)})])
        return outbox.write_order_cancelled(connection, job, order_id, placing_job.callback_url)


_PLACING_JOB = select(jobs).where(jobs.c.id == select(orders.c.job_id).where(
    orders.c.id == bindparam("order_id")).scalar_subquery())


def placing_job(connection: Connection, order_id: int) -> Row:
    """The job that placed an order (whose ledger a cancellation gives back)."""
    return connection.execute(_PLACING_JOB, {"order_id": order_id}).one()


# ---- accepted by the API -----------------------------------------------------------------------

@dataclass(frozen=True)
class Submission:
    """The job that answers the request, and whether this request created it."""

    job: Job
    created: bool


def fingerprint(customer_id: int, items: list[dict] | None, callback_url: str | None = None) -> str:
    """What makes two requests 'the same request' for idempotency."""
    request = {"customer_id": customer_id, "items": items}
    if callback_url is not None:
        request["callback_url"] = callback_url
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyConflict(Exception):
    """The key was used before for a different request."""


def _accept_statement():
    """INSERT the job; built once, compiled once. A job whose Idempotency-Key already exists is not
    inserted: no row returned. (Its `accepted` event is this row: see `timeline`.)"""
    values = {name: bindparam(name, type_=jobs.c[name].type) for name in _SUBMITTED}
    return (pg_insert(jobs).values(values)
            .on_conflict_do_nothing(index_elements=[jobs.c.idempotency_key])
            .returning(jobs.c.id))


_SUBMITTED = ("id", "customer_id", "status", "source", "requested_items", "attempts", "cart_status",
              "idempotency_key", "request_fingerprint", "callback_url", "traceparent")
_ACCEPT = _accept_statement()


def submit(connection: Connection, customer_id: int, items: list[dict] | None, idempotency_key: str | None,
           callback_url: str | None = None) -> Submission:
    """Insert the job (or find the one this key already made), in one statement that commits on its
    own on an autocommit connection."""
    items = normalize(items) if items is not None else None
    source = SOURCE_BODY if items is not None else SOURCE_CART
    values = dict(
        id=uuid.uuid4(),
        customer_id=customer_id,
        status=QUEUED,
        source=source,
        requested_items=items,
        attempts=0,
        cart_status=CART_NOT_NEEDED,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint(customer_id, items, callback_url) if idempotency_key else None,
        callback_url=callback_url,
        traceparent=tracing.traceparent(),
    )
    inserted = connection.execute(_ACCEPT, values).scalar()
    if inserted is not None:
        return Submission(Job(**values), created=True)
    with Session(connection) as session:
        existing = session.scalars(select(Job).where(Job.idempotency_key == idempotency_key)).one()
    if existing.request_fingerprint != values["request_fingerprint"]:
        raise IdempotencyConflict(idempotency_key)
    return Submission(existing, created=False)


# ---- many accepted at once: an import ------------------------------------------------------------

# How far apart an import's lines are due: a line's `next_run_at` is the position imports are being
# served at (the earliest due import line, or now) plus its index times this step. That position is
# a waiting job's `next_run_at`, so never below the due floor (`models.due`). Imports then
# interleave by that time, like flows in fair queuing: a new import's first lines are due beside a
# running import's next ones instead of behind its last one (the imports lane claims oldest first).
IMPORT_STEP = timedelta(microseconds=1)


@dataclass(frozen=True)
class Line:
    """One order of an import, as submitted (items None: the customer's cart)."""

    customer_id: int
    items: list[dict] | None = None
    idempotency_key: str | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class LineJob:
    """The job that answers one line, and whether this import created it (False: its key was seen)."""

    line: int
    job_id: uuid.UUID
    status: str
    customer_id: int
    created: bool


@dataclass(frozen=True)
class Imported:
    """An import's outcome: each line's job, or the lines whose idempotency key was already used for
    another request (then the caller rolls back: nothing is accepted)."""

    import_id: uuid.UUID
    jobs: list[LineJob]
    conflicts: list[int]

    @property
    def created(self) -> int:
        """How many jobs the import created (0: every line's key was seen)."""
        return sum(job.created for job in self.jobs)


def _submit_many_statement():
    """The import's row and its lines' jobs, in one INSERT: the lines travel as parallel arrays
    (one statement whatever their number, built and compiled once). A line whose idempotency key
    already exists (or repeats an earlier line's) is not inserted; the inserted ones are returned.

    Why arrays and not SQLAlchemy's plain multi-row INSERT (`insert()` with a list of rows, which
    insertmanyvalues sends as one statement): the plain form was tried, and the API spent 102-111 ms
    of CPU per 1,000-line POST /imports against 58-74 ms with this one (alternating in-process runs,
    Flask's test client, 15 imports each): 46-53 % of the API's CPU for an import, the statement
    rendered and its 15,000 parameters bound anew for every request."""
    imports, now = Import.__table__, func.now()
    types = {"id": Uuid(), "customer_id": Integer(), "requested_items": Text(), "idempotency_key": String(),
             "request_fingerprint": String(), "callback_url": String(), "import_line": Integer()}
    given = func.unnest(*(bindparam(name, type_=ARRAY(kind)) for name, kind in types.items())
                        ).table_valued(*types).render_derived(name="given")
    new_import = (insert(imports).values(id=bindparam("import_id"), customer_id=bindparam("import_customer_id"),
                                         lines=bindparam("lines")).returning(imports.c.id).cte("new_import"))
    served = (select(func.min(jobs.c.next_run_at))
              .where(in_lane(IMPORTS), due.WAITING_UNFINISHED, jobs.c.next_run_at.between(due.SINCE, now))
              .scalar_subquery())
    position = func.coalesce(served, now)
    rows = (select(given.c.id, given.c.customer_id, literal(KIND_PLACE), literal(QUEUED),
                   case((given.c.requested_items.is_(None), SOURCE_CART), else_=SOURCE_BODY),
                   cast(given.c.requested_items, JSONB), literal(0), literal(CART_NOT_NEEDED),
                   given.c.idempotency_key, given.c.request_fingerprint, given.c.callback_url,
                   bindparam("traceparent", type_=String()), new_import.c.id, given.c.import_line,
                   position + given.c.import_line * bindparam("step", type_=Interval()))
            .select_from(given.join(new_import, literal(True))).order_by(given.c.import_line))
    return (pg_insert(jobs).from_select(
        ["id", "customer_id", "kind", "status", "source", "requested_items", "attempts", "cart_status", "idempotency_key",
         "request_fingerprint", "callback_url", "traceparent", "import_id", "import_line", "next_run_at"], rows)
        .on_conflict_do_nothing(index_elements=[jobs.c.idempotency_key])
        .returning(jobs.c.id, jobs.c.import_line))


_SUBMIT_MANY = _submit_many_statement()
_KEYED = select(jobs.c.id, jobs.c.status, jobs.c.customer_id, jobs.c.idempotency_key, jobs.c.request_fingerprint
                ).where(jobs.c.idempotency_key == func.any(bindparam("keys", type_=ARRAY(String()))))


def submit_many(connection: Connection, lines: Sequence[Line]) -> Imported:
    """Accept an import: its row and a job per line in one statement, in the caller's transaction
    (which must roll back when the outcome names conflicts). A line whose idempotency key was seen
    with the same request is answered with that job, as `submit` does."""
    import_id = uuid.uuid4()
    items = [normalize(line.items) if line.items is not None else None for line in lines]
    prints = [fingerprint(line.customer_id, its, line.callback_url) if line.idempotency_key else None
              for line, its in zip(lines, items)]
    customers = {line.customer_id for line in lines}
    inserted = connection.execute(_SUBMIT_MANY, {
        "import_id": import_id, "import_customer_id": customers.pop() if len(customers) == 1 else None,
        "lines": len(lines), "traceparent": tracing.traceparent(), "step": IMPORT_STEP,
        "id": [uuid.uuid4() for _ in lines], "customer_id": [line.customer_id for line in lines],
        "requested_items": [json.dumps(its) if its is not None else None for its in items],
        "idempotency_key": [line.idempotency_key for line in lines], "request_fingerprint": prints,
        "callback_url": [line.callback_url for line in lines], "import_line": list(range(len(lines))),
        "since": due.floor.since(connection),
    }).all()
    answered = {index: job_id for job_id, index in inserted}
    seen = {row.idempotency_key: row for row in connection.execute(_KEYED, {"keys": [
        line.idempotency_key for index, line in enumerate(lines) if index not in answered]})}
    jobs_of, conflicts = [], []
    for index, line in enumerate(lines):
        if index in answered:
            jobs_of.append(LineJob(index, answered[index], QUEUED, line.customer_id, True))
            continue
        existing = seen[line.idempotency_key]
        if existing.request_fingerprint != prints[index]:
            conflicts.append(index)
        else:
            jobs_of.append(LineJob(index, existing.id, existing.status, existing.customer_id, False))
    return Imported(import_id, jobs_of, conflicts)


class NotAllowed(Exception):
    """The request conflicts with the resource's state; the message says why."""


def cancel_order(session: Session, order: Order) -> Submission:
    """The job that cancels `order`: created once, the same one for every later request."""
    existing = session.scalars(select(Job).where(Job.cancels_order_id == order.id)).one_or_none()
    if existing is not None:
        return Submission(existing, created=False)
    if order.status != ORDERED:
        raise NotAllowed(f"Order {order.id} is {order.status}; only an Ordered order can be cancelled")
    statement = pg_insert(Job).values(
        customer_id=order.customer_id, status=QUEUED, kind=KIND_CANCEL, cancels_order_id=order.id,
        source=SOURCE_BODY, attempts=0, cart_status=CART_NOT_NEEDED, traceparent=tracing.traceparent(),
    ).on_conflict_do_nothing(index_elements=[Job.cancels_order_id]).returning(Job)
    job = session.scalars(statement).one_or_none()
    if job is None:  # another request created it a moment ago
        return Submission(session.scalars(select(Job).where(Job.cancels_order_id == order.id)).one(), False)
    return Submission(job, created=True)


@dataclass(frozen=True)
class Cancellation:
    """The cancelled job, and the webhook deliveries its cancellation owes (publish after commit)."""

    job: Job
    owed: list[uuid.UUID]


def cancel_job(session: Session, job: Job) -> Cancellation:
    """Cancel a job that has not started: it will never take stock. Cancelling twice is harmless."""
    if job.status == CANCELLED:
        return Cancellation(job, [])
    if job.kind != KIND_CANCEL and job.status == QUEUED and job.attempts == 0:
        # A worker holds this lock for as long as it runs the job: if it is taken, the job has started.
        free = session.scalar(select(try_lock_job_for_transaction(literal(job.id))))
        session.refresh(job, with_for_update=True)
        if free and job.status == QUEUED and job.attempts == 0:
            job.status = CANCELLED
            timeline.record(session, [timeline.event(job.id, CANCELLED, CANCELLED)])
            return Cancellation(job, outbox.write_job_ends(session.connection(), [outbox.JobEnd(job, CANCELLED, job.error)]))
    raise NotAllowed(f"Job {job.id} is {job.status}; only a queued job that has not started can be cancelled")


def replay(session: Session, job: Job) -> Submission:
    """A new job doing what a failed one set out to do; the failed one stays as it was, for the record."""
    if job.status != "failed" or job.kind == KIND_CANCEL:
        raise NotAllowed(f"Job {job.id} is {job.status}; only a failed order job can be replayed")
    existing = session.scalars(select(Job).where(Job.replay_of == job.id)).first()
    if existing is not None:
        return Submission(existing, created=False)
    clone = Job(customer_id=job.customer_id, status=QUEUED, source=job.source, requested_items=job.requested_items,
                attempts=0, cart_status=CART_NOT_NEEDED, replay_of=job.id, callback_url=job.callback_url,
                traceparent=tracing.traceparent())
    session.add(clone)
    session.flush()
    timeline.record(session, [timeline.event(job.id, "replayed", job.status, job.attempts, {"by_job": str(clone.id)})])
    return Submission(clone, created=True)

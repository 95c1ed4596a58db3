"""Turning a request into a durable job, in one short transaction the caller commits.

An Idempotency-Key makes a submission safe to repeat: the same key and the
same request give back the same job; the same key with anything else is a
conflict the client must see.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, literal, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from models import events
from models.events import JobEvent
from models.jobs import CANCELLED, CART_NOT_NEEDED, KIND_CANCEL, QUEUED, SOURCE_BODY, SOURCE_CART, Job
from models.locks import try_lock_job_for_transaction
from models.orders import ORDERED, Order
from placement import jobs as job_life
from placement.items import normalize


class IdempotencyConflict(Exception):
    """The key was used before for a different request."""


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


def _accept_statement():
    """INSERT the job and its 'accepted' event in one statement; built once, compiled once.

    A job whose Idempotency-Key already exists is not inserted (nor its event): no row returned.
    """
    jobs, job_events = Job.__table__, JobEvent.__table__
    values = {name: bindparam(name, type_=jobs.c[name].type) for name in _SUBMITTED}
    new_job = (insert(jobs).values(values)
               .on_conflict_do_nothing(index_elements=[jobs.c.idempotency_key])
               .returning(jobs.c.id).cte("new_job"))
    return insert(job_events).from_select(
        ["job_id", "event", "status", "attempt", "detail"],
        select(new_job.c.id, literal("accepted"), literal(QUEUED), literal(0), bindparam("detail", type_=JSONB())),
    ).returning(job_events.c.job_id)


_SUBMITTED = ("id", "customer_id", "status", "source", "requested_items", "attempts", "cart_status",
              "idempotency_key", "request_fingerprint", "callback_url")
_ACCEPT = _accept_statement()


def submit(session: Session, customer_id: int, items: list[dict] | None, idempotency_key: str | None,
           callback_url: str | None = None) -> Submission:
    """Insert the job (or find the one this key already made); the caller commits."""
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
    )
    inserted = session.connection().execute(
        _ACCEPT, {**values, "detail": {"source": source}}
    ).scalar()
    if inserted is not None:
        return Submission(Job(**values), created=True)
    existing = session.scalars(select(Job).where(Job.idempotency_key == idempotency_key)).one()
    if existing.request_fingerprint != values["request_fingerprint"]:
        raise IdempotencyConflict(idempotency_key)
    return Submission(existing, created=False)


class NotAllowed(Exception):
    """The request conflicts with the resource's state; the message says why."""


def cancel_order(session: Session, order: Order) -> Submission:
    """The job that cancels `order`: created once, the same one for every later request."""
    existing = session.scalars(select(Job).where(Job.cancels_order_id == order.id)).one_or_none()
    if existing is not None:
        return Submission(existing, created=False)
    if order.status != ORDERED:
        raise NotAllowed(f"Order {order.id} is {order.status}; only an Ordered order can be cancelled")
    statement = insert(Job).values(
        customer_id=order.customer_id, status=QUEUED, kind=KIND_CANCEL, cancels_order_id=order.id,
        source=SOURCE_BODY, attempts=0, cart_status=CART_NOT_NEEDED,
    ).on_conflict_do_nothing(index_elements=[Job.cancels_order_id]).returning(Job)
    job = session.scalars(statement).one_or_none()
    if job is None:  # another request created it a moment ago
        return Submission(session.scalars(select(Job).where(Job.cancels_order_id == order.id)).one(), False)
    events.record(session, job.id, "accepted", QUEUED, 0, {"cancels_order_id": order.id})
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
            events.record(session, job.id, CANCELLED, CANCELLED, 0)
            return Cancellation(job, job_life.owe_end(session.connection(), job, CANCELLED))
    raise NotAllowed(f"Job {job.id} is {job.status}; only a queued job that has not started can be cancelled")


def replay(session: Session, job: Job) -> Submission:
    """A new job doing what a failed one set out to do; the failed one stays as it was, for the record."""
    if job.status != "failed" or job.kind == KIND_CANCEL:
        raise NotAllowed(f"Job {job.id} is {job.status}; only a failed order job can be replayed")
    existing = session.scalars(select(Job).where(Job.replay_of == job.id)).first()
    if existing is not None:
        return Submission(existing, created=False)
    clone = Job(customer_id=job.customer_id, status=QUEUED, source=job.source, requested_items=job.requested_items,
                attempts=0, cart_status=CART_NOT_NEEDED, replay_of=job.id, callback_url=job.callback_url)
    session.add(clone)
    session.flush()
    events.record(session, clone.id, "accepted", QUEUED, 0, {"replay_of": str(job.id)})
    events.record(session, job.id, "replayed", job.status, job.attempts, {"by_job": str(clone.id)})
    return Submission(clone, created=True)

"""Placing an order: the steps one job goes through, each recorded on the job.

items → check stock → take stock → save order (with the job's completion) →
close the cart. Any execution may be a retry or a redelivery, so every step
first looks at what an earlier execution finished; an advisory lock on the job
guarantees that two executions never run at once.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, insert

from models.jobs import (
    CART_CLOSED, CART_FAILED, CART_NOT_NEEDED, CART_PENDING, COMPLETED, FAILED, RETRYING,
    SOURCE_CART, TERMINAL, Job,
)
from models import events
from models.jobs import KIND_CANCEL
from models.orders import CANCELLED as CANCELLED_ORDER
from models.orders import Order, OrderItem
from peers.errors import BadPeerResponse, NotFound, PeerError, TransientPeerError
from placement import inventory, statements
from placement.context import PlacementContext
from placement.errors import JobEnded, JobFailed, JobRejected
from placement.items import InvalidItems, normalize
from placement.locks import LockBusy, LockLost, job_key
from placement.retry import RetryPolicy
from webhooks import outbox

log = logging.getLogger(__name__)

# Outcomes of an execution that leave the job's status as it was.
BUSY = "busy"
MISSING = "missing"

# Steps, as recorded on the job and reported to Flower.
LOADING_ITEMS = "loading_items"
CHECKING_STOCK = "checking_stock"
TAKING_STOCK = "taking_stock"
SAVING_ORDER = "saving_order"
UPDATING_CART = "updating_cart"
GIVING_BACK = "giving_back"
DONE = "done"

_RETRYABLE = (TransientPeerError, LockBusy, LockLost)


@dataclass(frozen=True)
class Outcome:
    """What an execution left behind: the job's status, when to run it again if at all,
    the error code that ended or delayed it, and the job's age once it is final."""

    status: str
    retry_in: float | None = None
    code: str | None = None
    age: float | None = None


@dataclass(frozen=True)
class _Snapshot:
    customer_id: int
    kind: str
    cancels_order_id: int | None
    source: str
    requested_items: list | None
    items: list | None
    resolution: str | None
    error: dict | None
    attempts: int
    created_at: datetime | None = None
    taken: bool = False  # some stock change was started: it is past the stock check

    def age(self) -> float | None:
        """Seconds since the job was submitted."""
        if self.created_at is None:
            return None
        return (datetime.now(timezone.utc) - self.created_at).total_seconds()


def execute(job_id: uuid.UUID, ctx: PlacementContext, policy: RetryPolicy, dispatch_deadline: float) -> Outcome:
    """Run the job as far as it can go now. Safe to call any number of times, concurrently."""
    key = job_key(job_id)
    if not ctx.locks.try_acquire(key):
        return Outcome(BUSY)
    try:
        return _execute_locked(job_id, ctx, policy, dispatch_deadline)
    finally:
        ctx.locks.release(key)


def _execute_locked(job_id, ctx, policy, dispatch_deadline) -> Outcome:
    job = _start(job_id, ctx, dispatch_deadline)
    if isinstance(job, Outcome):
        return job
    if job.attempts == 0:  # already finished: at most its cart is left to close
        return _close_cart(job_id, ctx, job.customer_id, policy)
    try:
        return _run_steps(job_id, ctx, job, policy)
    except _RETRYABLE as exc:
        return _retry_or_fail(job_id, ctx, job, policy, dispatch_deadline, exc)
    except Exception as exc:  # a bug or an outage we did not foresee: counted like any failed attempt
        log.exception("job %s attempt %s failed unexpectedly", job_id, job.attempts)
        return _retry_or_fail(job_id, ctx, job, policy, dispatch_deadline, exc)


def _run_steps(job_id, ctx, job: _Snapshot, policy: RetryPolicy) -> Outcome:
    if job.resolution:
        return _end(job_id, ctx, job, job.resolution, job.error)
    if job.kind == KIND_CANCEL:
        return _cancel_order(job_id, ctx, job)
    try:
        items = _load_items(job_id, ctx, job)
        if not job.taken:
            _check_stock(ctx, items)
        _step(ctx, job_id, TAKING_STOCK)
        for item in items:
            inventory.take(ctx, job_id, item["product_id"], item["quantity"])
        _save_order(ctx, job_id, job, items)
    except JobEnded as ended:
        return _end(job_id, ctx, job, ended.status, ended.as_error())
    if job.source != SOURCE_CART:
        return Outcome(COMPLETED, age=job.age())
    return replace(_close_cart(job_id, ctx, job.customer_id, policy), age=job.age())


def _start(job_id, ctx, dispatch_deadline) -> _Snapshot | Outcome:
    """Count the attempt and mark the job processing.

    A finished job comes back as a snapshot with no attempt counted when its
    cart still has to be closed, and as its plain outcome otherwise.
    """
    started = ctx.run(statements.START, {"job_id": job_id, "deadline": timedelta(seconds=dispatch_deadline)}
                      ).one_or_none()
    if started is not None:
        return _Snapshot(started.customer_id, started.kind, started.cancels_order_id, started.source,
                         started.requested_items, started.items, started.resolution, started.error,
                         started.attempts, started.created_at, started.taken)
    with ctx.transaction() as session:
        job = session.get(Job, job_id)
        if job is None:
            return Outcome(MISSING)
        if job.cart_status != CART_PENDING:  # it is final
            return Outcome(job.status)
        return _Snapshot(job.customer_id, job.kind, None, job.source, None, None, None, None, 0)


def _step(ctx, job_id, step: str, **changes) -> None:
    """Record the step on the job and in its timeline: one statement."""
    ctx.on_step(step)
    params = {"job_id": job_id, "new_step": step, "event_name": step,
              **{f"new_{name}": value for name, value in changes.items()}}
    ctx.run(statements.step(tuple(sorted(changes))), params)


def _load_items(job_id, ctx, job: _Snapshot) -> list[dict]:
    """The items to order: resolved once (from the body or the cart) and kept on the job."""
    if job.items is not None:
        return job.items
    ctx.on_step(LOADING_ITEMS)
    raw = job.requested_items
    if raw is None:
        try:
            raw = ctx.carts.get_items(job.customer_id)
        except NotFound:
            raise JobRejected("cart_not_found", f"Customer {job.customer_id} has no shopping cart") from None
        except BadPeerResponse as exc:
            raise JobFailed("bad_peer_response", str(exc), exc.details()) from None
    try:
        items = normalize(raw)
    except InvalidItems as exc:
        raise JobFailed("bad_peer_response", f"the cart's items are malformed: {exc}", {"peer": "cart"}) from None
    if not items:
        raise JobRejected("empty_cart", f"The shopping cart of customer {job.customer_id} is empty")
    _step(ctx, job_id, CHECKING_STOCK, items=items)
    return items


def _check_stock(ctx, items: list[dict]) -> None:
    """Refuse before touching any stock when a product is unknown or short (the seed's 400)."""
    unknown, short, available = [], [], {}
    for item in items:
        try:
            product = ctx.catalog.get_product(item["product_id"])
        except NotFound:
            unknown.append(item["product_id"])
            continue
        except BadPeerResponse as exc:
            raise JobFailed("bad_peer_response", str(exc), exc.details()) from None
        if product.quantity < item["quantity"]:
            short.append(item["product_id"])
            available[str(item["product_id"])] = product.quantity
    if unknown:
        raise JobRejected("unknown_product", f"Unknown product id(s): {unknown}", {"product_ids": unknown})
    if short:
        raise JobRejected(
            "insufficient_stock",
            f"Not enough product in stock for product id(s) {short}",
            {"product_ids": short, "available": available},
        )


def _save_order(ctx, job_id, job: _Snapshot, items: list[dict]) -> None:
    """Insert the order and its items in the same transaction that completes the job."""
    ctx.on_step(SAVING_ORDER)
    with ctx.transaction() as session:
        connection = session.connection()
        order_id = connection.execute(statements.NEW_ORDER, {"customer_id": job.customer_id, "job_id": job_id}).scalar()
        if order_id is None:  # an earlier execution saved it and died before completing the job
            order_id = connection.execute(statements.ORDER_OF_JOB, {"job_id": job_id}).scalar_one()
        else:
            connection.execute(insert(OrderItem.__table__), [
                {"order_id": order_id, "product_id": item["product_id"], "quantity": item["quantity"]}
                for item in items])
        completed = connection.execute(statements.COMPLETE, {
            "job_id": job_id, "order_id": order_id,
            "new_step": UPDATING_CART if job.source == SOURCE_CART else DONE,
            "new_cart_status": CART_PENDING if job.source == SOURCE_CART else CART_NOT_NEEDED,
        }).one()
        owed = outbox.job_ended(session, completed, order_id)
    ctx.announce(owed)


def _close_cart(job_id, ctx, customer_id: int, policy: RetryPolicy) -> Outcome:
    """Mark the cart Ordered; a failure here never undoes the saved order, it is retried on its own."""
    with ctx.transaction() as session:
        job = session.get(Job, job_id)
        if job.cart_status != CART_PENDING:
            return Outcome(job.status)
        attempt = max(1, job.attempts)
    ctx.on_step(UPDATING_CART)
    try:
        ctx.carts.mark_ordered(customer_id)
        result = CART_CLOSED
    except TransientPeerError as exc:
        delay = policy.delay(attempt, exc.retry_after)
        log.warning("job %s: cart update failed (%s); retrying in %.1fs", job_id, exc, delay)
        return Outcome(COMPLETED, retry_in=delay)
    except PeerError as exc:
        log.error("job %s: cart of customer %s cannot be marked Ordered: %s", job_id, customer_id, exc)
        result = CART_FAILED
    with ctx.transaction() as session:
        job = session.get(Job, job_id)
        job.cart_status, job.step = result, DONE
        events.record(session, job_id, "cart_closed" if result == CART_CLOSED else "cart_update_failed",
                      job.status, job.attempts)
    return Outcome(COMPLETED)


def _cancel_order(job_id, ctx, job: _Snapshot) -> Outcome:
    """Give the order's units back (through its placing job's ledger) and mark it Cancelled."""
    with ctx.transaction() as session:
        order = session.get(Order, job.cancels_order_id)
        placing_job = order.job_id
    _step(ctx, job_id, GIVING_BACK)
    inventory.give_back_all(ctx, placing_job)
    with ctx.transaction() as session:
        session.get(Order, job.cancels_order_id).status = CANCELLED_ORDER
        record = session.get(Job, job_id)
        record.status, record.step, record.error = COMPLETED, DONE, None
        events.record(session, job_id, "order_cancelled", COMPLETED, record.attempts,
                      {"order_id": job.cancels_order_id})
        events.record(session, placing_job, "order_cancelled", COMPLETED, 0,
                      {"order_id": job.cancels_order_id, "by_job": str(job_id)})
        owed = outbox.order_cancelled(session, record, job.cancels_order_id, session.get(Job, placing_job))
    ctx.announce(owed)
    log.info("job %s cancelled order %s", job_id, job.cancels_order_id)
    return Outcome(COMPLETED, age=job.age())


def _end(job_id, ctx, job: _Snapshot, status: str, error: dict) -> Outcome:
    """Give back whatever the job took, then end it with `status`; resumable if interrupted."""
    _step(ctx, job_id, GIVING_BACK, resolution=status, error=error)
    inventory.give_back_all(ctx, job_id)
    with ctx.transaction() as session:
        record = session.get(Job, job_id)
        record.status, record.step, record.resolution = status, DONE, None
        events.record(session, job_id, status, status, record.attempts, error)
        owed = outbox.job_ended(session, record, None)
    ctx.announce(owed)
    log.info("job %s ended %s: %s", job_id, status, error and error.get("code"))
    return Outcome(status, code=error and error.get("code"), age=job.age())


def _retry_or_fail(job_id, ctx, job: _Snapshot, policy: RetryPolicy, dispatch_deadline, exc) -> Outcome:
    """Schedule the next attempt, or end the job failed once the attempts are spent."""
    error = {"code": getattr(exc, "code", "internal_error"), "message": str(exc) or exc.__class__.__name__,
             "details": exc.details() if isinstance(exc, PeerError) else None}
    with ctx.transaction() as session:
        current = session.get(Job, job_id)
        if current.status in TERMINAL:  # it ended before the error: a final status is never undone
            return Outcome(current.status)
        giving_back = current.resolution is not None
    # A cancellation never gives up: the units it started returning must all come back.
    if not giving_back and job.kind != KIND_CANCEL and job.attempts >= policy.max_attempts:
        exhausted = {**error, "code": "retries_exhausted", "message": f"gave up after {job.attempts} attempts: {exc}",
                     "details": {"last_error": error["code"], **(error["details"] or {})}}
        try:
            return _end(job_id, ctx, job, FAILED, exhausted)
        except _RETRYABLE as again:
            exc = again  # the units could not be given back yet: keep retrying that part
    delay = policy.delay(job.attempts, getattr(exc, "retry_after", None))
    with ctx.transaction() as session:
        record = session.get(Job, job_id)
        record.status = RETRYING
        if record.resolution is None:
            record.error = error
        record.next_run_at = func.now() + timedelta(seconds=delay + dispatch_deadline)
        events.record(session, job_id, "retry_scheduled", RETRYING, record.attempts,
                      {**error, "retry_in_seconds": round(delay, 3)})
    log.info("job %s attempt %s: %s; retrying in %.1fs", job_id, job.attempts, exc, delay)
    return Outcome(RETRYING, retry_in=delay, code=error["code"])

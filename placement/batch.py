"""Placing a batch: every due job an execution could claim, placed together, step by step.

    claim → resolve items → take (or give back) stock → save orders → record ends and retries
          → close carts

A batch is a list of `JobInBatch`: each claimed job with its items, what it asks
of the stock and, once a step decides it, its `JobOutcome`. Each step works on
the jobs no step has decided yet, and decides those it must stop: a missing
cart, an unknown product, a flaky peer or a value the ledger cannot hold stays
with the jobs it concerns, never with the rest of the batch. Statements and peer
calls are made for the whole batch at once (one read and one write per product,
one transaction saving every order); if one fails with anything but an outage
of the database, the step is run again for each job alone, so a bug or a bad
value hits only the job that carries it. Any execution may be a retry or a
redelivery, so each step starts from what the ledger and the job record.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Row

from backoff import RetryPolicy
from models.db import is_outage
from models.inventory import GIVE_BACK, TAKE
from models.jobs import COMPLETED, FAILED, KIND_CANCEL, REJECTED, RETRYING, SOURCE_CART
from peers.errors import NotFound, PeerError, TransientPeerError
from placement import inventory, jobs
from placement.context import PlacementContext
from placement.items import InvalidItems, normalize
from placement.outcomes import JobOutcome, completed, failed, fault, peer_failed, rejected, waits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """How much an execution takes on and how long its claim stands."""

    batch_size: int
    lease: float  # seconds after which a claimed job counts as abandoned (the dispatch deadline)


@dataclass(eq=False)
class JobInBatch:
    """One claimed job on its way through the steps: its row, its items once resolved, what it asks
    of the stock, the order it cancels (for a cancellation: the job that placed it), and its
    outcome once a step decided it."""

    job: Row
    items: list[dict] | None = None
    want: inventory.Want | None = None
    placer: Row | None = None
    outcome: JobOutcome | None = None

    @property
    def running(self) -> bool:
        """Not decided yet, and not a completed job claimed only to close its cart."""
        return self.outcome is None and self.job.status != COMPLETED

    @property
    def places(self) -> bool:
        return self.job.kind != KIND_CANCEL and self.job.resolution is None

    @property
    def gives_back(self) -> bool:
        """Giving back what it took before it ends as decided earlier (`job.resolution`)."""
        return self.job.resolution is not None

    @property
    def cancels(self) -> bool:
        return self.job.kind == KIND_CANCEL

    @property
    def may_hold_units(self) -> bool:
        """Whether units taken for the job may still be out: it must give them back before it ends."""
        return self.want.holds_units if self.want is not None and self.want.kind == TAKE else self.job.items is not None


def place(ctx: PlacementContext, task_id: str, limits: Limits, policy: RetryPolicy,
          lane: str) -> dict[uuid.UUID, JobOutcome]:
    """Claim a batch of `lane` for execution `task_id` and take each job as far as it can go now:
    the outcome of each job claimed."""
    claimed = jobs.claim(ctx.connection, task_id, limits.batch_size, limits.lease, lane)
    ctx.on_claimed(claimed)
    batch = [JobInBatch(job) for job in claimed]
    try:
        _resolve_items(ctx, batch)
        _take_or_give_back_stock(ctx, batch)
        _save_orders(ctx, batch, limits.lease)
    except Exception as exc:
        _stop_on_bug(ctx, batch, exc)
    _record_ends_and_retries(ctx, batch, policy)
    _close_carts(ctx, batch, policy)
    return {entry.job.id: entry.outcome for entry in batch}


# ---- the steps ----------------------------------------------------------------------------------

def _resolve_items(ctx: PlacementContext, batch: list[JobInBatch]) -> None:
    """Each placing job's items: kept from an earlier attempt, else the body's, else its cart's
    (fetched concurrently); kept on the job once resolved. Jobs whose items cannot be had end or
    wait here."""
    placing = [entry for entry in batch if entry.running and entry.places]
    for entry in placing:
        entry.items = entry.job.items
    from_body = [entry for entry in placing if entry.items is None and entry.job.requested_items is not None]
    from_cart = [entry for entry in placing if entry.items is None and entry.job.requested_items is None]
    if from_cart:
        ctx.on_step(jobs.LOADING_ITEMS)
    answers = [entry.job.requested_items for entry in from_body]
    answers += ctx.gather([ctx.carts.get_items(entry.job.customer_id) for entry in from_cart])
    for entry, answer in zip(from_body + from_cart, answers):
        _check_items(entry, answer, from_cart=entry.job.requested_items is None)
    jobs.items_resolved(ctx.connection, [(entry.job, entry.items) for entry in placing if entry.items is not None])


def _check_items(entry: JobInBatch, answer, from_cart: bool) -> None:
    """The job's items from its body or its cart, or the outcome that stops it."""
    job = entry.job
    if isinstance(answer, NotFound):
        entry.outcome = rejected("cart_not_found", f"Customer {job.customer_id} has no shopping cart")
    elif isinstance(answer, PeerError):
        entry.outcome = peer_failed(answer)
    elif isinstance(answer, Exception):
        log.error("job %s: the cart could not be read", job.id, exc_info=answer)
        entry.outcome = fault(answer, "bad_peer_response")
    else:
        try:
            items = normalize(answer)
        except InvalidItems as exc:
            entry.outcome = (failed("bad_peer_response", f"the cart's items are malformed: {exc}", {"peer": "cart"})
                             if from_cart else failed("invalid_items", f"the job's items are malformed: {exc}"))
            return
        if not items:
            entry.outcome = rejected("empty_cart", f"The shopping cart of customer {job.customer_id} is empty")
        else:
            entry.items = items


def _take_or_give_back_stock(ctx: PlacementContext, batch: list[JobInBatch]) -> None:
    """What each running job asks of the stock: a placing job takes its items; a job that must end
    gives back what it took; a cancellation gives back what its order's job took. One round of
    the inventory protocol for them all."""
    for entry in batch:
        if not entry.running:
            continue
        if entry.places and entry.items is not None:
            entry.want = inventory.Want(entry.job.id, TAKE, entry.items)
        elif entry.gives_back:
            entry.want = inventory.Want(entry.job.id, GIVE_BACK)
        elif entry.cancels:
            entry.placer = jobs.placing_job(ctx.connection, entry.job.cancels_order_id)
            entry.want = inventory.Want(entry.job.id, GIVE_BACK, owner=entry.placer.id)
    moving = [entry for entry in batch if entry.want is not None]
    if not moving:
        return
    ctx.on_step(jobs.TAKING_STOCK if any(entry.want.kind == TAKE for entry in moving) else jobs.GIVING_BACK)
    _each_alone_on_fault(ctx, moving, lambda entries: inventory.apply(ctx, [entry.want for entry in entries]),
                         "bad_peer_response")
    for entry in moving:
        if entry.outcome is not None:
            entry.want.holds_units = True  # a fault mid-protocol: what it took is not known here
        elif entry.want.refused is not None:
            entry.outcome = entry.want.refused
        if entry.want.kind == GIVE_BACK and entry.outcome is not None and entry.outcome.status != RETRYING:
            # Units given back must all come back: a give-back stopped by the catalog's (or its own
            # data's) fault waits and tries again, it never ends with the units still out.
            entry.outcome = waits(entry.outcome.code, entry.outcome.message, entry.outcome.details)
        elif entry.gives_back and entry.outcome is None:  # everything is back: it ends as decided earlier
            error = entry.job.error or {}
            entry.outcome = JobOutcome(entry.job.resolution, error.get("code", "internal_error"),
                                       error.get("message", ""), error.get("details"))


def _save_orders(ctx: PlacementContext, batch: list[JobInBatch], lease: float) -> None:
    """Save the order of every job whose stock is taken, in one transaction, and cancel the orders
    whose units are back; announce the webhooks they owe once committed."""
    stocked = [entry for entry in batch if entry.running and entry.want is not None]
    placed = [entry for entry in stocked if entry.places]
    if placed:
        ctx.on_step(jobs.SAVING_ORDER)

        def save(entries: list[JobInBatch]) -> None:
            ctx.announce(jobs.complete(ctx.connection, [jobs.Placed(e.job, e.items) for e in entries], lease))
            for entry in entries:
                entry.outcome = completed().but(age=jobs.age(entry.job))

        _each_alone_on_fault(ctx, placed, save, "invalid_items")
    for entry in stocked:
        if entry.cancels:
            ctx.announce(jobs.order_cancelled(ctx.connection, entry.job, entry.job.cancels_order_id, entry.placer))
            log.info("job %s cancelled order %s", entry.job.id, entry.job.cancels_order_id)
            entry.outcome = completed().but(age=jobs.age(entry.job))


def _record_ends_and_retries(ctx: PlacementContext, batch: list[JobInBatch], policy: RetryPolicy) -> None:
    """Settle each stopped job's outcome (a retry's delay, a give-up, giving back before an end)
    and record the ends (with the webhooks they owe) and the retries: one transaction each."""
    for entry in batch:
        if entry.outcome is not None and entry.outcome.status != COMPLETED:
            entry.outcome = _settled(entry, policy)
    ends = [(entry.job, entry.outcome) for entry in batch
            if entry.outcome is not None and entry.outcome.status in (REJECTED, FAILED)]
    retries = [(entry.job, entry.outcome) for entry in batch
               if entry.outcome is not None and entry.outcome.status == RETRYING]
    ctx.announce(jobs.end(ctx.connection, ends))
    jobs.retry_later(ctx.connection, retries)


def _settled(entry: JobInBatch, policy: RetryPolicy) -> JobOutcome:
    """A stopped job's outcome as recorded: a wait gets its delay, or becomes a give-up once the
    policy says so (never for a job giving units back: they must all come back); an end of a job
    that may hold units becomes a give-back first, at once."""
    outcome, job, age = entry.outcome, entry.job, jobs.age(entry.job)
    if outcome.status == RETRYING:
        if entry.gives_back or entry.cancels or not policy.exhausted(job.attempts, age):
            return outcome.but(retry_in=policy.delay(job.attempts, outcome.retry_after))
        outcome = failed("retries_exhausted", f"gave up after {job.attempts} attempts over {age:.0f} s: "
                         f"{outcome.message}", {"last_error": outcome.code, **(outcome.details or {})})
    if entry.places and entry.may_hold_units:
        return outcome.but(status=RETRYING, retry_in=0.0, ends_as=outcome.status)
    return outcome.but(age=age)


def _close_carts(ctx: PlacementContext, batch: list[JobInBatch], policy: RetryPolicy) -> None:
    """Mark each saved cart job's cart Ordered, concurrently; a failure never undoes an order."""
    closing = [entry for entry in batch if entry.job.source == SOURCE_CART and (
        entry.job.status == COMPLETED or (entry.outcome is not None and entry.outcome.status == COMPLETED))]
    if not closing:
        return
    ctx.on_step(jobs.UPDATING_CART)
    answers = ctx.gather([ctx.carts.mark_ordered(entry.job.customer_id) for entry in closing])
    closed, later = [], []
    for entry, answer in zip(closing, answers):
        outcome = entry.outcome or completed()
        if isinstance(answer, PeerError) and not isinstance(answer, TransientPeerError):
            log.error("job %s: cart of customer %s cannot be marked Ordered: %s", entry.job.id,
                      entry.job.customer_id, answer)
            closed.append((entry.job, False))
        elif isinstance(answer, Exception):
            if not isinstance(answer, TransientPeerError):
                log.error("job %s: closing the cart failed", entry.job.id, exc_info=answer)
            delay = policy.delay(max(1, entry.job.attempts), getattr(answer, "retry_after", None))
            log.warning("job %s: cart update failed (%s); retrying in %.1fs", entry.job.id, answer, delay)
            later.append((entry.job, delay))
            outcome = outcome.but(retry_in=delay)
        else:
            closed.append((entry.job, True))
        entry.outcome = outcome
    jobs.carts_closed(ctx.connection, closed)
    jobs.cart_closing_later(ctx.connection, later)


# ---- faults ---------------------------------------------------------------------------------------

def _stop_on_bug(ctx: PlacementContext, batch: list[JobInBatch], exc: Exception) -> None:
    """A step failed for the whole batch, not for one job's data: an outage of the database stops
    the execution (its jobs come back with the task's retry); a bug stops the jobs not decided yet,
    which retry with backoff. Those already decided keep their outcome."""
    if _stops_execution(ctx, exc):
        raise exc
    log.exception("a batch of %d job(s) stopped", len(batch))
    ctx.connection.rollback()  # SQLAlchemy's bookkeeping only: the connection is in AUTOCOMMIT
    stopped = waits("internal_error", str(exc) or exc.__class__.__name__)
    for entry in batch:
        if entry.running:
            entry.outcome = stopped


def _stops_execution(ctx: PlacementContext, exc: Exception) -> bool:
    """The database is out of reach, or the execution's connection (with its locks) is gone."""
    return is_outage(exc) or isinstance(exc, inventory.LockLost) or ctx.connection.invalidated


def _each_alone_on_fault(ctx: PlacementContext, entries: list[JobInBatch],
                         step: Callable[[list[JobInBatch]], None], data_code: str) -> None:
    """Run `step` for the entries together; if it fails with anything but an outage of the database
    (which stops the execution: its jobs come back with the task's retry), run it for each entry
    alone, so that a value the database refuses, or a bug one job's data trips, stops only that
    job: ended (`data_code`) or retried with backoff (`placement.outcomes.fault`)."""
    try:
        step(entries)
        return
    except Exception as exc:
        if _stops_execution(ctx, exc):
            raise
        ctx.connection.rollback()  # SQLAlchemy's bookkeeping only: the connection is in AUTOCOMMIT
        if len(entries) == 1:
            log.exception("job %s stopped", entries[0].job.id)
            entries[0].outcome = fault(exc, data_code)
            return
        log.exception("a step for %d jobs failed; each job now goes alone", len(entries))
    for entry in entries:
        _each_alone_on_fault(ctx, [entry], step, data_code)

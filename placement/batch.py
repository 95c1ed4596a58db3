"""Placing a batch: every due job an execution could claim, placed together.

claim → items (the body's, or the carts', fetched concurrently) → stock (one
read and one write per product for the whole batch, `placement.inventory`) →
one transaction saving every order with its job's completion → carts closed
concurrently after the commit. Any execution may be a retry or a redelivery,
so each step starts from what the ledger and the job already record. Every job
ends, retries or goes on alone: one job's missing cart, unknown product or
flaky peer never holds back the rest of its batch.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import Row

from backoff import RetryPolicy
from models.inventory import GIVE_BACK, TAKE
from models.jobs import COMPLETED, KIND_CANCEL, RETRYING, SOURCE_CART
from peers.errors import BadPeerResponse, NotFound, PeerError, TransientPeerError
from placement import inventory, jobs
from placement.context import PlacementContext
from placement.errors import JobEnded, JobFailed, JobRejected
from placement.items import InvalidItems, normalize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the execution left a job as: its status, when it runs again (if it does), the code that
    ended or delayed it, and its age once it is final (for the completion-time metric)."""

    status: str
    retry_in: float | None = None
    code: str | None = None
    age: float | None = None


@dataclass(frozen=True)
class Limits:
    """How much an execution takes on and how long its claim stands."""

    batch_size: int
    lease: float  # seconds after which a claimed job counts as abandoned (the dispatch deadline)


def place(ctx: PlacementContext, task_id: str, limits: Limits, policy: RetryPolicy) -> dict[uuid.UUID, Outcome]:
    """Claim a batch for execution `task_id` and take each job as far as it can go now."""
    claimed = jobs.claim(ctx.connection, task_id, limits.batch_size, limits.lease)
    ctx.on_claimed(claimed)
    return _Batch(ctx, limits, policy).run(claimed) if claimed else {}


class _Batch:
    def __init__(self, ctx: PlacementContext, limits: Limits, policy: RetryPolicy):
        self.ctx, self.limits, self.policy = ctx, limits, policy
        self.outcomes: dict[uuid.UUID, Outcome] = {}
        self.retries: dict[uuid.UUID, tuple[Row, Exception]] = {}
        self.ends: dict[uuid.UUID, tuple[Row, JobEnded]] = {}
        self.taking: set[uuid.UUID] = set()  # jobs that went to the stock step in this execution

    def run(self, claimed: list[Row]) -> dict[uuid.UUID, Outcome]:
        carts = [job for job in claimed if job.status == COMPLETED]  # saved; the cart is left to close
        running = [job for job in claimed if job.status != COMPLETED]
        try:
            carts += self._place(running)
        except inventory.StockBusy as exc:  # not a fault: the jobs wait their turn
            log.info("batch of %d job(s) waits: %s", len(running), exc)
            self._undecided(running, exc)
        except Exception as exc:  # an outage or a bug: every job not yet decided tries again
            log.exception("batch of %d job(s) stopped", len(running))
            self._undecided(running, exc)
        self._finish()
        self._close_carts(carts)
        return self.outcomes

    def _undecided(self, running: list[Row], exc: Exception) -> None:
        """Every job the batch had not decided yet tries again."""
        for job in running:
            if job.id not in self.outcomes and job.id not in self.ends:
                self.retries.setdefault(job.id, (job, exc))

    # -- the steps --------------------------------------------------------------------------------

    def _place(self, running: list[Row]) -> list[Row]:
        """Items, stock, orders for the running jobs; the completed cart jobs, whose carts are next."""
        placing = [job for job in running if job.kind != KIND_CANCEL and job.resolution is None]
        items = self._items(placing)
        wants = [inventory.Want(job.id, TAKE, items[job.id]) for job in placing if job.id in items]
        self.taking = {want.job_id for want in wants}
        returning = [job for job in running if job.resolution is not None]
        wants += [inventory.Want(job.id, GIVE_BACK) for job in returning]
        cancels = {job.id: jobs.placing_job(self.ctx.connection, job.cancels_order_id)
                   for job in running if job.kind == KIND_CANCEL}
        wants += [inventory.Want(job_id, GIVE_BACK, owner=placer.id) for job_id, placer in cancels.items()]
        if not wants:
            return []
        self.ctx.on_step(jobs.GIVING_BACK if not items else jobs.TAKING_STOCK)
        stock = inventory.apply(self.ctx, wants)
        by_id = {job.id: job for job in running}
        placed = []
        for want in wants:
            job, result = by_id[want.job_id], stock[want.job_id]
            if result.retry is not None:
                self.retries[job.id] = (job, result.retry)
            elif result.ended is not None and result.took:
                self._give_back_later(job, result.ended)
            elif result.ended is not None:
                self.ends[job.id] = (job, result.ended)
            elif job.kind == KIND_CANCEL:
                self._cancelled(job, cancels[job.id])
            elif job.resolution is not None:
                self.ends[job.id] = (job, _Resolved(job))
            else:
                placed.append(jobs.Placed(job, items[job.id]))
        if not placed:
            return []
        self.ctx.on_step(jobs.SAVING_ORDER)
        self.ctx.announce(jobs.complete(self.ctx.connection, placed, self.limits.lease))
        for p in placed:
            self.outcomes[p.job.id] = Outcome(COMPLETED, age=jobs.age(p.job))
        return [p.job for p in placed if p.job.source == SOURCE_CART]

    def _items(self, placing: list[Row]) -> dict[uuid.UUID, list[dict]]:
        """Each placing job's items: kept from an earlier attempt, else the body's, else its cart's
        (fetched concurrently). Jobs whose items cannot be had end or retry here."""
        items = {job.id: job.items for job in placing if job.items is not None}
        body = [job for job in placing if job.items is None and job.requested_items is not None]
        carts = [job for job in placing if job.items is None and job.requested_items is None]
        if carts:
            self.ctx.on_step(jobs.LOADING_ITEMS)
        resolved = {}
        raws = [(job, job.requested_items) for job in body]
        raws += zip(carts, self.ctx.gather([self.ctx.carts.get_items(job.customer_id) for job in carts]))
        for job, raw in raws:
            try:
                resolved[job.id] = _checked(job, raw)
            except JobEnded as ended:
                self.ends[job.id] = (job, ended)
            except TransientPeerError as exc:
                self.retries[job.id] = (job, exc)
        items.update(resolved)
        jobs.items_resolved(self.ctx.connection, resolved, list(items))
        return items

    def _give_back_later(self, job: Row, ended: JobEnded) -> None:
        """A job that must end but holds units from an earlier attempt: it gives them back first,
        in its next execution (at once)."""
        jobs.giving_back(self.ctx.connection, {job.id: (ended.status, ended.as_error())})
        self.retries[job.id] = (job, _GiveBackFirst(ended))

    def _cancelled(self, job: Row, placer: Row) -> None:
        self.ctx.announce(jobs.order_cancelled(self.ctx.connection, job, job.cancels_order_id, placer))
        log.info("job %s cancelled order %s", job.id, job.cancels_order_id)
        self.outcomes[job.id] = Outcome(COMPLETED, age=jobs.age(job))

    # -- ends and retries ---------------------------------------------------------------------------

    def _finish(self) -> None:
        """Record every end and every retry of the batch: one statement (or transaction) each."""
        for job_id, (job, exc) in list(self.retries.items()):
            if isinstance(exc, _GiveBackFirst) or job.kind == KIND_CANCEL or job.resolution is not None:
                continue  # giving units back never gives up: they must all come back
            if self.policy.exhausted(job.attempts, jobs.age(job)):
                del self.retries[job_id]
                error = _error(exc)
                gave_up = JobFailed("retries_exhausted", f"gave up after {job.attempts} attempts over "
                                    f"{jobs.age(job):.0f} s: {exc}",
                                    {"last_error": error["code"], **(error["details"] or {})})
                if self._took(job):
                    self._give_back_later(job, gave_up)
                else:
                    self.ends[job_id] = (job, gave_up)
        if self.ends:
            ends = {job_id: (job, ended.status, ended.as_error()) for job_id, (job, ended) in self.ends.items()}
            self.ctx.announce(jobs.end(self.ctx.connection, ends))
            for job_id, (job, ended) in self.ends.items():
                log.info("job %s ended %s: %s", job_id, ended.status, ended.code)
                self.outcomes[job_id] = Outcome(ended.status, code=ended.code, age=jobs.age(job))
        if self.retries:
            delays = {job_id: 0.0 if isinstance(exc, _GiveBackFirst) else
                      self.policy.delay(job.attempts, getattr(exc, "retry_after", None))
                      for job_id, (job, exc) in self.retries.items()}
            jobs.retry_later(self.ctx.connection, {
                job_id: (None if isinstance(exc, _GiveBackFirst) or job.resolution else _error(exc), delays[job_id])
                for job_id, (job, exc) in self.retries.items()})
            for job_id, (job, exc) in self.retries.items():
                log.info("job %s attempt %s: %s; retrying in %.1fs", job_id, job.attempts, exc, delays[job_id])
                self.outcomes[job_id] = Outcome(RETRYING, retry_in=delays[job_id], code=_error(exc)["code"])

    def _took(self, job: Row) -> bool:
        """Whether the job may hold units (it reached the stock step in this or an earlier attempt)."""
        return job.items is not None or job.id in self.taking

    def _close_carts(self, completed: list[Row]) -> None:
        """Mark each saved cart job's cart Ordered, concurrently; a failure never undoes an order."""
        if not completed:
            return
        self.ctx.on_step(jobs.UPDATING_CART)
        answers = self.ctx.gather([self.ctx.carts.mark_ordered(job.customer_id) for job in completed])
        closed, later = {}, {}
        for job, answer in zip(completed, answers):
            if isinstance(answer, TransientPeerError):
                later[job.id] = self.policy.delay(max(1, job.attempts), answer.retry_after)
                log.warning("job %s: cart update failed (%s); retrying in %.1fs", job.id, answer, later[job.id])
                self.outcomes[job.id] = Outcome(COMPLETED, retry_in=later[job.id],
                                                age=self.outcomes.get(job.id, Outcome(COMPLETED)).age)
            elif isinstance(answer, PeerError):
                log.error("job %s: cart of customer %s cannot be marked Ordered: %s", job.id, job.customer_id, answer)
                closed[job.id] = False
            elif isinstance(answer, Exception):
                raise answer
            else:
                closed[job.id] = True
        jobs.carts_closed(self.ctx.connection, closed)
        jobs.cart_closing_later(self.ctx.connection, later)
        for job_id in closed:
            self.outcomes.setdefault(job_id, Outcome(COMPLETED))


class _GiveBackFirst(Exception):
    """Not an error: the job ends once its units are back (its next execution, at once)."""

    def __init__(self, ended: JobEnded):
        super().__init__(f"giving back before ending {ended.status}")
        self.ended = ended


class _Resolved(JobEnded):
    """A job that gave back everything and now ends as it was decided earlier."""

    def __init__(self, job: Row):
        error = job.error or {}
        super().__init__(error.get("code", "internal_error"), error.get("message", ""), error.get("details"))
        self.status = job.resolution


def _checked(job: Row, raw) -> list[dict]:
    """The job's items from its body or its cart: JobEnded when there are none to order."""
    if isinstance(raw, NotFound):
        raise JobRejected("cart_not_found", f"Customer {job.customer_id} has no shopping cart")
    if isinstance(raw, BadPeerResponse):
        raise JobFailed("bad_peer_response", str(raw), raw.details())
    if isinstance(raw, Exception):
        raise raw
    try:
        items = normalize(raw)
    except InvalidItems as exc:
        raise JobFailed("bad_peer_response", f"the cart's items are malformed: {exc}", {"peer": "cart"}) from None
    if not items:
        raise JobRejected("empty_cart", f"The shopping cart of customer {job.customer_id} is empty")
    return items


def _error(exc: Exception) -> dict:
    """The job's `error` for a fault that will be retried: our own errors carry their code; anything
    else (an outage, a bug) is an internal error, its message kept for support."""
    code = exc.code if isinstance(exc, (PeerError, inventory.StockBusy)) else "internal_error"
    return {"code": code, "message": str(exc) or exc.__class__.__name__,
            "details": exc.details() if isinstance(exc, PeerError) else None}


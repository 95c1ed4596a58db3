"""The inventory protocol: a batch's stock changes, locked, ledgered, settled and written once per product.

Against the seed's GET-then-PUT catalog, a product's quantity is changed only
while holding that product's advisory lock. A batch takes the locks of all its
products at once, in product order (two batches sharing products never
deadlock), then:

1. settles every write still `pending` on those products (a crash, a timeout,
   a 5xx after the catalog applied it) by reading the product back, so no write
   is repeated or lost; a write whose version has not moved may still be in
   flight, so it is fenced (the same quantity written back with If-Match on
   that version) and can never land later;
2. reads each product once (that read is the stock check);
3. allocates stock to the batch's jobs in arrival order, all or nothing per
   job: a job that does not fit takes nothing;
4. writes each product once with the total (If-Match when the catalog gives an
   ETag), ledgered `pending` before the PUT and `applied` after; a write whose
   outcome is unclear is settled at once, else left pending for the next holder.

Peer calls of one stage run concurrently. Switching to a reservation endpoint
or another catalog contract touches only this module.
"""
from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Integer, String, Uuid, bindparam, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError

from models.inventory import APPLIED, GIVE_BACK, PENDING, PLANNED, TAKE, VOID, InventoryMove, StockWrite
from models.locks import HELD_COUNT, LOCK_ALL, UNLOCK_ALL, product_key
from peers.catalog import Product
from peers.errors import BadPeerResponse, NotFound, PeerError, PreconditionFailed, TransientPeerError
from placement.context import PlacementContext
from placement.errors import JobEnded, JobFailed, JobRejected

log = logging.getLogger(__name__)

# PostgreSQL's SQLSTATE for a lock wait that ran past lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"
# Fence attempts on one pending write before leaving it for the next holder.
FENCES_PER_SETTLE = 3

moves, writes = InventoryMove.__table__, StockWrite.__table__


@dataclass
class Want:
    """What one job of the batch asks of the stock: take its items, or give back what `owner` took
    (a cancellation gives back the units of the job that placed the order)."""

    job_id: uuid.UUID
    kind: str
    items: list[dict] = field(default_factory=list)  # for a take: [{"product_id", "quantity"}]
    owner: uuid.UUID | None = None  # for a give-back: whose takes; None: the job's own

    @property
    def ledger_job(self) -> uuid.UUID:
        return self.owner or self.job_id


@dataclass
class Result:
    """How a job's want ended: done, ended (rejected or failed, `took` telling whether it holds
    units from an earlier attempt), or to be tried again (`retry`, a transient error)."""

    done: bool = False
    ended: JobEnded | None = None
    retry: Exception | None = None
    took: bool = False


# ---- the ledger's statements -------------------------------------------------------------------

_job_ids = bindparam("job_ids", type_=ARRAY(Uuid()))
# Every move of these jobs: what they took or gave back, and through which write.
OWN_MOVES = select(moves.c.job_id, moves.c.product_id, moves.c.kind, moves.c.quantity, moves.c.state,
                   moves.c.write_id).where(moves.c.job_id == func.any(_job_ids))
# The writes to settle or look up (caller holds the products' locks): pending ones on the products,
# and those the jobs' own pending moves rode on (another holder may have settled them since).
WRITES_TO_SETTLE = select(writes.c.id, writes.c.product_id, writes.c.state, writes.c.quantity_before,
                          writes.c.quantity_after, writes.c.etag_before).where(or_(
    (writes.c.state == PENDING) & (writes.c.product_id == func.any(bindparam("product_ids", type_=ARRAY(Integer)))),
    writes.c.id == func.any(bindparam("write_ids", type_=ARRAY(Integer))))).order_by(writes.c.id)


def _arrays(name: str, **columns):
    """Rows from parallel array parameters `:<name>_<column>`: one bound array per column."""
    arrays = [bindparam(f"{name}_{column}", type_=ARRAY(kind)) for column, kind in columns.items()]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


def _record_writes():
    """Ledger a round's writes (one per product) and every job's share of them, pending, in one
    statement, only while this connection still holds every lock in :keys (the fencing check
    before the irreversible PUTs): the write ids come back by product, none when a lock was lost."""
    held = HELD_COUNT.scalar_subquery() == func.cardinality(bindparam("keys", type_=ARRAY(BigInteger)))
    planned = _arrays("planned", product_id=Integer, before=Integer, after=Integer, etag=String)
    written = (insert(writes)
               .from_select(["product_id", "state", "quantity_before", "quantity_after", "etag_before"],
                            select(planned.c.product_id, literal(PENDING), planned.c.before, planned.c.after,
                                   planned.c.etag).where(held))
               .returning(writes.c.id, writes.c.product_id).cte("written"))
    share = _arrays("share", job_id=Uuid, product_id=Integer, kind=String, quantity=Integer)
    shares = pg_insert(moves).from_select(
        ["job_id", "product_id", "kind", "quantity", "state", "write_id"],
        select(share.c.job_id, share.c.product_id, share.c.kind, share.c.quantity, literal(PENDING), written.c.id)
        .join_from(share, written, written.c.product_id == share.c.product_id))
    shares = shares.on_conflict_do_update(
        index_elements=[moves.c.job_id, moves.c.product_id, moves.c.kind],
        set_={"quantity": shares.excluded.quantity, "state": PENDING, "write_id": shares.excluded.write_id,
              "updated_at": func.now()}).cte("shares")
    return select(written.c.id, written.c.product_id).add_cte(shares)


def _mark_writes():
    """Record how writes ended: applied (their moves applied) or void (their moves planned again)."""
    ended = (update(writes).where(writes.c.id == func.any(bindparam("write_ids", type_=ARRAY(Integer))))
             .values(state=bindparam("state"), updated_at=func.now())
             .returning(writes.c.id).cte("ended"))
    moved = (update(moves).where(moves.c.write_id.in_(select(ended.c.id)))
             .values(state=bindparam("move_state"), updated_at=func.now()).returning(moves.c.id).cte("moved"))
    return select(func.count()).select_from(ended).add_cte(moved)


RECORD_WRITES = _record_writes()
MARK_WRITES = _mark_writes()


class LockLost(RuntimeError):
    """The connection holding the products' locks broke: someone else may hold them now."""


class StockBusy(RuntimeError):
    """Another execution held the batch's products for longer than this one may wait: try again soon."""

    code = "stock_busy"


# ---- one round ---------------------------------------------------------------------------------

@dataclass
class _Share:
    job_id: uuid.UUID  # the ledger's job (whose move it is)
    kind: str
    quantity: int

    @property
    def delta(self) -> int:
        return -self.quantity if self.kind == TAKE else self.quantity


def apply(ctx: PlacementContext, wants: list[Want]) -> dict[uuid.UUID, Result]:
    """Settle, check and change the stock for `wants` (in arrival order): one read and at most
    one write per product. Every job gets a Result."""
    connection = ctx.connection
    owners = [want.ledger_job for want in wants]
    own: dict[tuple[uuid.UUID, int, str], dict] = {
        (row.job_id, row.product_id, row.kind): row._asdict()
        for row in connection.execute(OWN_MOVES, {"job_ids": owners})}
    products = sorted({item["product_id"] for want in wants for item in want.items}
                      | {product for (_, product, kind) in own if kind == TAKE})
    results = {want.job_id: Result() for want in wants}
    if not products:
        for want in wants:
            results[want.job_id].done = True
        return results
    keys = [product_key(product) for product in products]
    try:
        connection.execute(LOCK_ALL, {"keys": keys})
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        connection.rollback()  # SQLAlchemy's bookkeeping only: in AUTOCOMMIT the statement ended alone
        # Session advisory locks outlive a failed statement: give back those it got before the wait.
        connection.execute(UNLOCK_ALL, {"keys": keys})
        raise StockBusy(f"products {products[:5]}{'...' if len(products) > 5 else ''} are being changed by "
                        "another execution") from None
    try:
        done = _apply_locked(ctx, wants, own, products, keys, results)
    except BaseException:
        with suppress(Exception):  # a broken connection released them already; the first error counts
            connection.execute(UNLOCK_ALL, {"keys": keys})
        raise
    connection.execute(UNLOCK_ALL, {"keys": keys})
    return done


def _apply_locked(ctx, wants, own, products, keys, results):
    connection = ctx.connection
    riding = [move["write_id"] for move in own.values() if move["state"] == PENDING]
    settle = connection.execute(WRITES_TO_SETTLE, {"product_ids": products, "write_ids": riding}).all()
    current = dict(zip(products, ctx.gather([ctx.catalog.get_product(p) for p in products])))
    outcome, settled_now = {}, {}  # write id -> APPLIED / VOID: every write looked at, those settled here
    for write in settle:
        if write.state != PENDING:
            outcome[write.id] = write.state
            continue
        product = current[write.product_id]
        if isinstance(product, Exception):
            continue  # cannot tell yet: the write stays pending, its product waits
        try:
            landed, current[write.product_id] = _settle(ctx, write, product)
        except PeerError as exc:
            current[write.product_id] = exc
            continue
        outcome[write.id] = settled_now[write.id] = APPLIED if landed else VOID
        log.info("settled write %s on product %s: %s", write.id, write.product_id,
                 "applied" if landed else "not applied")
    _mark(connection, settled_now)
    for move in own.values():
        if move["state"] == PENDING and move["write_id"] in outcome:
            move["state"] = APPLIED if outcome[move["write_id"]] == APPLIED else PLANNED
    unsettled = {w.product_id for w in settle if w.state == PENDING and w.id not in outcome}

    shares: dict[int, list[_Share]] = defaultdict(list)
    available = {p: product.quantity for p, product in current.items() if isinstance(product, Product)}
    for want in wants:
        lines = _lines(want, own, current)
        blocked = _blocked(want, lines, current, unsettled, own)
        if blocked is not None:
            _refuse(results[want.job_id], blocked, want, own)
            continue
        if want.kind == TAKE:
            short = [p for p, quantity in lines.items() if available[p] < quantity]
            if short:
                _refuse(results[want.job_id], JobRejected(
                    "insufficient_stock", f"Not enough product in stock for product id(s) {short}",
                    {"product_ids": short, "available": {str(p): available[p] for p in short}}), want, own)
                continue
        for product_id, quantity in lines.items():
            share = _Share(want.ledger_job, want.kind, quantity)
            shares[product_id].append(share)
            available[product_id] += share.delta
        results[want.job_id].done = True  # for now: every write it rides on must land

    failed = _write(ctx, shares, current, keys)
    for want in wants:
        result = results[want.job_id]
        lost = [p for p in failed if any(share.job_id == want.ledger_job for share in shares[p])]
        if result.done and lost:
            result.done = False
            result.retry = failed[lost[0]]
    return results


def _lines(want: Want, own: dict, current: dict) -> dict[int, int]:
    """What the want still has to move, by product: a take's items not yet applied; a give-back's
    applied or unsettled takes not yet given back (but for a product the catalog no longer has)."""
    if want.kind == TAKE:
        return {item["product_id"]: item["quantity"] for item in want.items
                if own.get((want.ledger_job, item["product_id"], TAKE), {}).get("state") != APPLIED}
    lines = {product: move["quantity"] for (job, product, kind), move in own.items()
             if job == want.ledger_job and kind == TAKE and move["state"] in (PENDING, APPLIED)
             and own.get((job, product, GIVE_BACK), {}).get("state") != APPLIED}
    for product in [p for p in lines if isinstance(current[p], NotFound)]:
        log.error("job %s: product %s vanished; its %s units cannot be returned", want.ledger_job, product,
                  lines.pop(product))
    return lines


def _blocked(want, lines, current, unsettled, own) -> Exception | None:
    """Why the want cannot move now, if it cannot: an unknown product, a broken or unreachable
    catalog, or a write on its products whose outcome is still unknown."""
    unknown = [p for p in lines if isinstance(current[p], NotFound)]  # only a take's: see _lines
    if unknown:
        return JobRejected("unknown_product", f"Unknown product id(s): {unknown}", {"product_ids": unknown})
    for product_id in lines:
        problem = current[product_id]
        if isinstance(problem, BadPeerResponse):
            return JobFailed(problem.code, str(problem), problem.details())
        if isinstance(problem, Exception):
            return problem
        if product_id in unsettled:
            return TransientPeerError(f"an earlier write on product {product_id} is not settled yet", peer="catalog")
    pending = [p for (job, p, kind), move in own.items() if job == want.ledger_job and move["state"] == PENDING]
    if pending:
        return TransientPeerError(f"an earlier write on product {pending[0]} is not settled yet", peer="catalog")
    return None


def _refuse(result: Result, why: Exception, want: Want, own: dict) -> None:
    if isinstance(why, JobEnded):
        result.ended = why
        result.took = want.kind == TAKE and any(
            job == want.ledger_job and kind == TAKE and move["state"] in (PENDING, APPLIED)
            for (job, _, kind), move in own.items())
    else:
        result.retry = why


def _write(ctx, shares: dict[int, list[_Share]], current: dict, keys: list[int]) -> dict[int, Exception]:
    """Write each product once with its shares' total; the products whose write did not land, and why."""
    if not shares:
        return {}
    targets = {p: current[p].quantity + sum(share.delta for share in s) for p, s in shares.items()}
    planned = sorted(shares)
    rows = ctx.connection.execute(RECORD_WRITES, {
        "keys": keys,
        "planned_product_id": planned,
        "planned_before": [current[p].quantity for p in planned],
        "planned_after": [targets[p] for p in planned],
        "planned_etag": [current[p].etag for p in planned],
        "share_job_id": [share.job_id for p in planned for share in shares[p]],
        "share_product_id": [p for p in planned for _ in shares[p]],
        "share_kind": [share.kind for p in planned for share in shares[p]],
        "share_quantity": [share.quantity for p in planned for share in shares[p]],
    }).all()
    if len(rows) != len(planned):
        raise LockLost("a product lock was lost before the catalog writes")
    write_ids = {row.product_id: row.id for row in rows}

    failed, ended = {}, {}
    puts = ctx.gather([ctx.catalog.set_quantity(current[p], targets[p]) for p in planned])
    for product_id, answer in zip(planned, puts):
        write_id = write_ids[product_id]
        if isinstance(answer, Product):
            ended[write_id] = APPLIED
            continue
        if isinstance(answer, (PreconditionFailed, NotFound)):
            ended[write_id] = VOID  # refused: nothing changed
            failed[product_id] = TransientPeerError(f"catalog refused the write of product {product_id}: "
                                                    f"{answer}", peer="catalog")
            continue
        log.info("catalog write for product %s unclear (%s); settling it", product_id, answer)
        landed = _settle_now(ctx, write_id, product_id, current[product_id], targets[product_id])
        if landed is None:
            failed[product_id] = answer if isinstance(answer, PeerError) else TransientPeerError(
                str(answer), peer="catalog")
        else:
            ended[write_id] = APPLIED if landed else VOID
            if not landed:
                failed[product_id] = TransientPeerError(f"the write of product {product_id} did not land",
                                                        peer="catalog")
    _mark(ctx.connection, ended)
    return failed


@dataclass(frozen=True)
class _Sent:
    """A write as the ledger holds it (the shape of a WRITES_TO_SETTLE row)."""

    id: int
    quantity_before: int
    quantity_after: int
    etag_before: str | None


def _settle_now(ctx, write_id, product_id, before: Product, target: int) -> bool | None:
    """Settle a write whose answer was lost, right away; None when that cannot be told yet."""
    sent = _Sent(write_id, before.quantity, target, before.etag)
    try:
        landed, _ = _settle(ctx, sent, ctx.wait(ctx.catalog.get_product(product_id)))
    except PeerError:
        return None
    return landed


def _mark(connection, ended: dict[int, str]) -> None:
    """Record how writes ended, in one statement per outcome."""
    for state, move_state in ((APPLIED, APPLIED), (VOID, PLANNED)):
        ids = [write_id for write_id, outcome in ended.items() if outcome == state]
        if ids:
            connection.execute(MARK_WRITES, {"write_ids": ids, "state": state, "move_state": move_state})


def _settle(ctx: PlacementContext, write, product: Product) -> tuple[bool, Product]:
    """Whether a pending write landed, decided so that it can never land later, and the product
    as it is now.

    Only lock holders write, and each settles the pending write before its own,
    so once the product's version moved past the one the write was based on,
    either that write landed (the quantity is the one it asked for) or a fence
    did (the quantity is unchanged). While the version has not moved, the write
    may still be in flight (a dead worker's request, a hung one): a fence, the
    same quantity written back with If-Match on that version, makes sure it is
    refused if it ever arrives. Without ETags only the quantity can tell.
    """
    for _ in range(FENCES_PER_SETTLE):
        if not (write.etag_before and product.etag):
            return product.quantity == write.quantity_after, product
        if product.etag != write.etag_before:
            if product.quantity not in (write.quantity_before, write.quantity_after):
                log.error("product %s changed outside the service (expected %s or %s, found %s)",
                          product.id, write.quantity_before, write.quantity_after, product.quantity)
            return product.quantity == write.quantity_after, product
        try:
            return False, ctx.wait(ctx.catalog.set_quantity(product, product.quantity))
        except PreconditionFailed:
            product = ctx.wait(ctx.catalog.get_product(product.id))  # the write (or a fence) landed just now
    raise TransientPeerError(f"could not settle a write on product {product.id}", peer="catalog")

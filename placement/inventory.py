"""The inventory protocol: a batch's stock changes, locked, ledgered, settled and written once per product.

Against the seed's GET-then-PUT catalog, a product's quantity is changed only
while holding that product's advisory lock. A batch takes the locks of all its
products at once, in product order (two batches sharing products never
deadlock), then:

1. settles the write still `pending` on each of those products, if any (a
   crash, a timeout, a 5xx after the catalog applied it; at most one per
   product, its latest) by reading the product back, so no write
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

from sqlalchemy import Integer, bindparam, func, insert, select, true, union, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError

from models.db import transaction
from models.inventory import APPLIED, GIVE_BACK, PENDING, PLANNED, TAKE, VOID, InventoryMove, StockWrite
from models.locks import HELD_COUNT, LOCK_ALL, UNLOCK_ALL, product_key
from peers.catalog import Product
from peers.errors import NotFound, PeerError, PreconditionFailed, TransientPeerError
from placement.context import PlacementContext
from placement.outcomes import JobOutcome, peer_failed, rejected, waits

log = logging.getLogger(__name__)

# PostgreSQL's SQLSTATE for a lock wait that ran past lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"
# Fence attempts on one pending write before leaving it for the next holder.
FENCES_PER_SETTLE = 3

moves, writes = InventoryMove.__table__, StockWrite.__table__


@dataclass
class Want:
    """What one job of the batch asks of the stock: take its items, or give back what `owner` took
    (a cancellation gives back the units of the job that placed the order). `apply` fills in the
    rest: why it could not move now, if it could not (`refused`: an end, or a wait), and whether
    the job may hold units (taken by an earlier attempt, or by this one)."""

    job_id: uuid.UUID
    kind: str
    items: list[dict] = field(default_factory=list)  # for a take: [{"product_id", "quantity"}]
    owner: uuid.UUID | None = None  # for a give-back: whose takes; None: the job's own
    refused: JobOutcome | None = None
    holds_units: bool = False

    @property
    def ledger_job(self) -> uuid.UUID:
        return self.owner or self.job_id


# ---- the ledger's statements -------------------------------------------------------------------

# Every move of these jobs: what they took or gave back, and through which write.
OWN_MOVES = select(moves.c.job_id, moves.c.product_id, moves.c.kind, moves.c.quantity, moves.c.state,
                   moves.c.write_id).where(moves.c.job_id.in_(bindparam("job_ids", expanding=True)))

# The writes to settle or look up (the caller holds the products' locks): each product's latest
# write if it is pending, and the writes the jobs' own pending moves rode on (another holder may
# have settled them since).
#
# Only a product's lock holder writes it, and each holder settles the product's pending write
# before it makes its own: so at most one write per product is pending, and it is the product's
# latest. Reading the latest write by (product_id, id) costs one index probe per product however
# long the product's history is, even while a held snapshot (a backup, a long report) keeps
# vacuum from removing the index entries of old row versions; a scan for `state = 'pending'`
# walked one dead entry per write made since that snapshot began.
_locked = (func.unnest(bindparam("product_ids", type_=ARRAY(Integer))).table_valued("product_id")
           .render_derived(name="locked"))
_WRITE_COLUMNS = (writes.c.id, writes.c.product_id, writes.c.state, writes.c.quantity_before,
                  writes.c.quantity_after, writes.c.etag_before)
_latest = (select(*_WRITE_COLUMNS).where(writes.c.product_id == _locked.c.product_id)
           .order_by(writes.c.id.desc()).limit(1).lateral("latest"))
WRITES_TO_SETTLE = union(
    select(_latest).select_from(_locked).join(_latest, true()).where(_latest.c.state == PENDING),
    select(*_WRITE_COLUMNS).where(writes.c.id.in_(bindparam("write_ids", expanding=True))),
).order_by("id")

_NEW_WRITES = insert(writes).returning(writes.c.id, writes.c.product_id, sort_by_parameter_order=True)
_SHARES = pg_insert(moves)
_SHARES = _SHARES.on_conflict_do_update(
    index_elements=[moves.c.job_id, moves.c.product_id, moves.c.kind],
    set_={"quantity": _SHARES.excluded.quantity, "state": PENDING, "write_id": _SHARES.excluded.write_id,
          "updated_at": func.now()})


def _mark_writes():
    """Record how writes ended, in one statement: the writes :write_ids :state, and the moves that
    rode on them :move_state (applied with an applied write, planned again with a void one)."""
    ended = (update(writes).where(writes.c.id == func.any(bindparam("write_ids", type_=ARRAY(Integer))))
             .values(state=bindparam("state"), updated_at=func.now())
             .returning(writes.c.id).cte("ended"))
    moved = (update(moves).where(moves.c.write_id.in_(select(ended.c.id)))
             .values(state=bindparam("move_state"), updated_at=func.now()).returning(moves.c.id).cte("moved"))
    return select(func.count()).select_from(ended).add_cte(moved)


MARK_WRITES = _mark_writes()


class LockLost(RuntimeError):
    """The connection holding the products' locks broke: someone else may hold them now."""


# ---- one round ---------------------------------------------------------------------------------

@dataclass
class _Share:
    job_id: uuid.UUID  # the ledger's job (whose move it is)
    kind: str
    quantity: int

    @property
    def delta(self) -> int:
        return -self.quantity if self.kind == TAKE else self.quantity


def apply(ctx: PlacementContext, wants: list[Want]) -> None:
    """Settle, check and change the stock for `wants` (in arrival order): one read and at most
    one write per product. A want left with `refused` None moved all it had to."""
    connection = ctx.connection
    for want in wants:
        want.refused = None
    own: dict[tuple[uuid.UUID, int, str], dict] = {
        (row.job_id, row.product_id, row.kind): row._asdict()
        for row in connection.execute(OWN_MOVES, {"job_ids": [want.ledger_job for want in wants]})}
    products = sorted({item["product_id"] for want in wants for item in want.items}
                      | {product for (_, product, kind) in own if kind == TAKE})
    if not products:
        return
    keys = [product_key(product) for product in products]
    try:
        connection.execute(LOCK_ALL, {"keys": keys})
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        connection.rollback()  # SQLAlchemy's bookkeeping only: in AUTOCOMMIT the statement ended alone
        # Session advisory locks outlive a failed statement: give back those it got before the wait.
        connection.execute(UNLOCK_ALL, {"keys": keys})
        busy = waits("stock_busy", f"products {products[:5]}{'...' if len(products) > 5 else ''} are being "
                     "changed by another execution")
        for want in wants:  # not a fault: the jobs wait their turn
            want.refused = busy
        return
    try:
        _apply_locked(ctx, wants, own, products, keys)
    except BaseException:
        with suppress(Exception):  # a broken connection released them already; the first error counts
            connection.execute(UNLOCK_ALL, {"keys": keys})
        raise
    connection.execute(UNLOCK_ALL, {"keys": keys})


def _apply_locked(ctx, wants, own, products, keys) -> None:
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
        want.holds_units = want.kind == TAKE and any(
            job == want.ledger_job and kind == TAKE and move["state"] in (PENDING, APPLIED)
            for (job, _, kind), move in own.items())
        want.refused = _blocked(want, lines, current, unsettled, own)
        if want.refused is None and want.kind == TAKE:
            short = [p for p, quantity in lines.items() if available[p] < quantity]
            if short:
                want.refused = rejected(
                    "insufficient_stock", f"Not enough product in stock for product id(s) {short}",
                    {"product_ids": short, "available": {str(p): available[p] for p in short}})
        if want.refused is not None:
            continue
        for product_id, quantity in lines.items():
            share = _Share(want.ledger_job, want.kind, quantity)
            shares[product_id].append(share)
            available[product_id] += share.delta
        want.holds_units = want.holds_units or (want.kind == TAKE and bool(lines))

    failed_writes = _write(ctx, shares, current, keys)
    for want in wants:
        lost = [p for p in failed_writes if any(share.job_id == want.ledger_job for share in shares[p])]
        if want.refused is None and lost:  # every write it rides on must land
            want.refused = failed_writes[lost[0]]


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


def _blocked(want, lines, current, unsettled, own) -> JobOutcome | None:
    """Why the want cannot move now, if it cannot: an unknown product, a broken or unreachable
    catalog, or a write on its products whose outcome is still unknown."""
    unknown = [p for p in lines if isinstance(current[p], NotFound)]  # only a take's: see _lines
    if unknown:
        return rejected("unknown_product", f"Unknown product id(s): {unknown}", {"product_ids": unknown})
    for product_id in lines:
        answer = current[product_id]
        if isinstance(answer, PeerError):
            return peer_failed(answer)
        if isinstance(answer, Exception):  # a bug in reading the product: logged where it was raised
            return waits("internal_error", f"product {product_id} could not be read: {answer!r}")
        if product_id in unsettled:
            return _unsettled(product_id)
    pending = [p for (job, p, kind), move in own.items() if job == want.ledger_job and move["state"] == PENDING]
    return _unsettled(pending[0]) if pending else None


def _unsettled(product_id: int) -> JobOutcome:
    return waits(TransientPeerError.code, f"an earlier write on product {product_id} is not settled yet",
                 {"peer": "catalog", "status": None})


def _write(ctx, shares: dict[int, list[_Share]], current: dict, keys: list[int]) -> dict[int, JobOutcome]:
    """Write each product once with its shares' total; the products whose write did not land, and why."""
    if not shares:
        return {}
    targets = {p: current[p].quantity + sum(share.delta for share in s) for p, s in shares.items()}
    planned = sorted(shares)
    write_ids = _record_writes(ctx.connection, keys, [
        {"product_id": p, "state": PENDING, "quantity_before": current[p].quantity, "quantity_after": targets[p],
         "etag_before": current[p].etag} for p in planned], shares)

    failed_writes, ended = {}, {}
    puts = ctx.gather([ctx.catalog.set_quantity(current[p], targets[p]) for p in planned])
    for product_id, answer in zip(planned, puts):
        write_id = write_ids[product_id]
        if isinstance(answer, Product):
            ended[write_id] = APPLIED
            continue
        if isinstance(answer, (PreconditionFailed, NotFound)):
            ended[write_id] = VOID  # refused: nothing changed
            failed_writes[product_id] = waits(TransientPeerError.code, f"catalog refused the write of product "
                                              f"{product_id}: {answer}", answer.details())
            continue
        log.info("catalog write for product %s unclear (%s); settling it", product_id, answer)
        landed = _settle_now(ctx, write_id, product_id, current[product_id], targets[product_id])
        if landed is None:
            failed_writes[product_id] = peer_failed(answer) if isinstance(answer, PeerError) else waits(
                TransientPeerError.code, str(answer), {"peer": "catalog", "status": None})
        else:
            ended[write_id] = APPLIED if landed else VOID
            if not landed:
                failed_writes[product_id] = waits(TransientPeerError.code,
                                                  f"the write of product {product_id} did not land",
                                                  {"peer": "catalog", "status": None})
    _mark(ctx.connection, ended)
    return failed_writes


def _record_writes(connection, keys: list[int], planned: list[dict], shares: dict[int, list[_Share]]) -> dict[int, int]:
    """Ledger a round's writes (one per product) and every job's share of them, pending, in one
    transaction, only while this connection still holds every product lock (the fencing check
    before the irreversible PUTs): the write ids by product."""
    with transaction(connection):
        if connection.execute(HELD_COUNT, {"keys": keys}).scalar() != len(keys):
            raise LockLost("a product lock was lost before the catalog writes")
        write_ids = {row.product_id: row.id for row in connection.execute(_NEW_WRITES, planned)}
        connection.execute(_SHARES, [
            {"job_id": share.job_id, "product_id": p, "kind": share.kind, "quantity": share.quantity,
             "state": PENDING, "write_id": write_ids[p]} for p in sorted(shares) for share in shares[p]])
    return write_ids


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

"""The inventory protocol: every stock change, locked, ledgered and reconciled.

Against the seed's GET-then-PUT catalog, a change to one product is made only
while holding that product's advisory lock. Before writing, the holder settles
any `pending` ledger row left on the product (a crash, a timeout, a 5xx after
the catalog applied the write) by reading the product back, so no write is
repeated or lost. Every write carries If-Match when the catalog gives an ETag;
a write whose outcome is unknown is fenced (the same quantity written back on
the version it was based on) so that, still in flight from a dead worker or a
hung connection, it can never land after it was judged lost.

Switching to a reservation endpoint or another catalog contract touches only
this module.
"""
from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from models.inventory import APPLIED, GIVE_BACK, PENDING, PLANNED, TAKE, InventoryMove
from peers.catalog import Product
from peers.errors import NotFound, PeerError, PreconditionFailed, TransientPeerError
from placement import statements
from placement.context import PlacementContext
from placement.errors import JobEnded, JobFailed, JobRejected
from placement.locks import product_key

log = logging.getLogger(__name__)

# Writes tried for one product under one lock hold before giving the lock up and retrying later.
WRITES_PER_HOLD = 3


def take(ctx: PlacementContext, job_id: uuid.UUID, product_id: int, quantity: int) -> None:
    """Take `quantity` units for the job, once; JobRejected when the catalog has too few."""
    _apply(ctx, job_id, product_id, TAKE, quantity)


def give_back_all(ctx: PlacementContext, job_id: uuid.UUID) -> None:
    """Return every unit the job took (or may have taken), once each."""
    with ctx.transaction() as session:
        takes = session.scalars(
            select(InventoryMove).where(
                InventoryMove.job_id == job_id,
                InventoryMove.kind == TAKE,
                InventoryMove.state.in_((PENDING, APPLIED)),
            ).order_by(InventoryMove.product_id)
        ).all()
    for move in takes:
        try:
            _apply(ctx, job_id, move.product_id, GIVE_BACK, move.quantity)
        except JobEnded as exc:
            log.error("job %s: %s; its units cannot be returned", job_id, exc)


def _apply(ctx: PlacementContext, job_id: uuid.UUID, product_id: int, kind: str, quantity: int) -> None:
    key = product_key(product_id)
    with ctx.locks.hold(key):
        for _ in range(WRITES_PER_HOLD):
            if not _needs_write(ctx, job_id, product_id, kind):
                return
            product = _read(ctx, product_id, kind)
            target = product.quantity + (-quantity if kind == TAKE else quantity)
            if target < 0:
                raise JobRejected(
                    "insufficient_stock",
                    f"Not enough product in stock for product id {product_id}",
                    {"product_ids": [product_id], "available": {str(product_id): product.quantity}},
                )
            move_id = _pending(ctx, job_id, product_id, kind, quantity, product, target)
            ctx.locks.check_held(key)
            try:
                ctx.catalog.set_quantity(product, target)
            except NotFound:
                raise _gone(product_id, kind) from None
            except PreconditionFailed:
                _mark(ctx, move_id, PLANNED)  # refused: the product changed since it was read
                continue
            except PeerError as exc:
                # Refused, timed out or answered badly: the write may or may not be in. Settle it first.
                log.info("catalog write for product %s unclear (%s); reconciling", product_id, exc)
                continue
            _mark(ctx, move_id, APPLIED)
            return
    raise TransientPeerError(f"catalog writes for product {product_id} kept failing", peer="catalog")


def _needs_write(ctx, job_id, product_id, kind) -> bool:
    """Settle the product's writes whose outcome was never learned (caller holds the product lock),
    then whether the job's move of this kind is still to be written.

    Nothing is pending almost always: then this is one short read.
    """
    params = {"product_id": product_id, "job_id": job_id}
    seen = ctx.run(statements.MOVES_SEEN, params).all()
    pending = [move for move in seen if move.state == PENDING]
    for move in pending:
        applied = _settle(ctx, move)
        log.info("reconciled %s of product %s for job %s: %s", move.kind, product_id, move.job_id,
                 "applied" if applied else "not applied")
        _mark(ctx, move.id, APPLIED if applied else PLANNED)
    if pending:
        seen = ctx.run(statements.MOVES_SEEN, params).all()
    states = {move.kind: move.state for move in seen if move.job_id == job_id}
    if kind == GIVE_BACK and states.get(TAKE) != APPLIED:
        return False  # nothing was taken: nothing to give back
    return states.get(kind) != APPLIED


def _pending(ctx, job_id, product_id, kind, quantity, product: Product, target: int) -> int:
    """Ledger the write about to be sent (what it is based on, what it asks for) before sending it."""
    return ctx.run(statements.MOVE_PENDING, {
        "job_id": job_id, "product_id": product_id, "kind": kind, "quantity": quantity,
        "before": product.quantity, "etag": product.etag, "after": target}).scalar_one()


def _read(ctx, product_id: int, kind: str) -> Product:
    try:
        return ctx.catalog.get_product(product_id)
    except NotFound:
        raise _gone(product_id, kind) from None


def _gone(product_id: int, kind: str):
    if kind == TAKE:
        return JobRejected("unknown_product", f"Product {product_id} does not exist", {"product_ids": [product_id]})
    return JobFailed("product_gone", f"Product {product_id} vanished before its units could be returned",
                     {"product_ids": [product_id]})


def _mark(ctx, move_id: int, state: str) -> None:
    """Record what became of a pending write: applied, or not (planned again, to be retried)."""
    statement = statements.MOVE_APPLIED if state == APPLIED else statements.MOVE_NOT_APPLIED
    ctx.run(statement, {"move_id": move_id})


def _settle(ctx: PlacementContext, move) -> bool:
    """Whether a pending write (a ledger row) landed, decided so that it can never land later.

    Only lock holders write, and each settles the pending write before its own,
    so once the product's version moved past the one the write was based on,
    either that write landed (the quantity is the one it asked for) or a fence
    did (the quantity is unchanged). While the version has not moved, the write
    may still be in flight (a dead worker's request, a hung one): a fence, the
    same quantity written back with If-Match on that version, makes sure it is
    refused if it ever arrives. Without ETags only the quantity can tell.
    """
    for _ in range(WRITES_PER_HOLD):
        product = ctx.catalog.get_product(move.product_id)
        if not (move.etag_before and product.etag):
            return product.quantity == move.quantity_after
        if product.etag != move.etag_before:
            if product.quantity not in (move.quantity_before, move.quantity_after):
                log.error("product %s changed outside the service (expected %s or %s, found %s)",
                          product.id, move.quantity_before, move.quantity_after, product.quantity)
            return product.quantity == move.quantity_after
        ctx.locks.check_held(product_key(move.product_id))
        try:
            ctx.catalog.set_quantity(product, product.quantity)
        except PreconditionFailed:
            continue  # the pending write (or an earlier fence) landed just now: read again
        return False
    raise TransientPeerError(f"could not settle a write on product {move.product_id}", peer="catalog")

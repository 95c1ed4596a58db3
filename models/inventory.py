"""The inventory ledger: every stock change the service makes, before and after it happens.

A `StockWrite` is one PUT of a product's quantity, carrying the shares
(`InventoryMove`) of every job it serves: a batch writes each product once with
the total. The write and its moves are recorded `pending` before the catalog
is asked to change, and turned `applied` (or `void`, the moves `planned` again)
once the outcome is known. A pending write left by a crash or a lost answer is
settled against the catalog by the next holder of the product's lock, so no
change is ever made twice or forgotten.
"""
from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps

TAKE = "take"
GIVE_BACK = "give_back"
PLANNED = "planned"
PENDING = "pending"
APPLIED = "applied"
VOID = "void"

# The largest quantity the ledger holds (bigint): a catalog quantity beyond it cannot be ledgered.
QUANTITY_MAX = 2**63 - 1


class StockWrite(Base, Timestamps):
    """One write of one product's quantity: what it was based on, what it asked for, how it ended."""

    __tablename__ = "stock_writes"
    __table_args__ = (
        CheckConstraint(f"state IN ('{PENDING}', '{APPLIED}', '{VOID}')", name="state_known"),
        # Each product's latest write (placement.inventory.WRITES_TO_SETTLE).
        Index("ix_stock_writes_product_id_id", "product_id", "id"),
        # Retention finds the oldest writes by it (a column never updated: updates stay HOT).
        Index("ix_stock_writes_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    # What the catalog held when the write was sent, what it was asked to hold, and its ETag.
    quantity_before: Mapped[int] = mapped_column(BigInteger)
    quantity_after: Mapped[int] = mapped_column(BigInteger)
    etag_before: Mapped[str | None] = mapped_column(String(128))


class InventoryMove(Base, Timestamps):
    """One job's change to one product's stock, in one direction; its state follows its write's."""

    __tablename__ = "inventory_moves"
    __table_args__ = (
        UniqueConstraint("job_id", "product_id", "kind"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(f"kind IN ('{TAKE}', '{GIVE_BACK}')", name="kind_known"),
        CheckConstraint(f"state IN ('{PLANNED}', '{PENDING}', '{APPLIED}')", name="state_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), index=True)
    product_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default=PLANNED)
    # The write that carries (or last carried) this move to the catalog.
    write_id: Mapped[int | None] = mapped_column(ForeignKey("stock_writes.id"), index=True)

    @property
    def delta(self) -> int:
        """Signed change to the catalog's quantity."""
        return -self.quantity if self.kind == TAKE else self.quantity

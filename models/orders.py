"""The seed's `orders` and `order_items` tables, with what correctness needs added.

`job_id` is unique: a job can never produce a second order, however often it runs. It is
no foreign key: orders are the shop's records and outlive their jobs, which retention prunes
(tasks.retention); the id stays, so `GET /jobs/{id}` can tell a pruned job from one never issued.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, String, UniqueConstraint, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base

ORDERED = "Ordered"
CANCELLED = "Cancelled"
ORDER_STATUSES = (ORDERED, CANCELLED)


class Order(Base):
    """A placed order; created only together with its job's completion."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String, default=ORDERED)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.id", lazy="selectin"
    )


class OrderItem(Base):
    """One product line of an order."""

    __tablename__ = "order_items"
    __table_args__ = (
        UniqueConstraint("order_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)

    order: Mapped[Order] = relationship(back_populates="items")

"""Webhooks: who wants to hear about jobs, what we owe them, and every try at telling them.

Deliveries are an outbox: a row is written in the same transaction that ends a
job (or cancels an order), so an event is never announced that did not happen
and never lost because a process died right after the commit. Workers send
the rows and record each attempt.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamps

# What a delivery can announce.
JOB_COMPLETED = "job.completed"
JOB_REJECTED = "job.rejected"
JOB_FAILED = "job.failed"
JOB_CANCELLED = "job.cancelled"
ORDER_CANCELLED = "order.cancelled"
EVENT_TYPES = (JOB_COMPLETED, JOB_REJECTED, JOB_FAILED, JOB_CANCELLED, ORDER_CANCELLED)

# Where a delivery stands.
PENDING = "pending"
DELIVERED = "delivered"
GAVE_UP = "failed"
DELIVERY_STATUSES = (PENDING, DELIVERED, GAVE_UP)


class WebhookSubscription(Base, Timestamps):
    """An endpoint an admin registered to hear about every job's events of the chosen types."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    description: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class WebhookDelivery(Base, Timestamps):
    """One event owed to one URL, until it is delivered or given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
        Index("ix_webhook_deliveries_pending_next_attempt_at", "next_attempt_at",
              postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, server_default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # While a worker is sending it: no one else may until then.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)

    attempt_log: Mapped[list["WebhookAttempt"]] = relationship(
        order_by="WebhookAttempt.id", lazy="selectin", viewonly=True)


class WebhookAttempt(Base):
    """One POST of a delivery: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
    number: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)

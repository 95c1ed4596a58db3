"""A job is one accepted submission: the durable record the API answers from.

PostgreSQL, not the broker, is the source of truth: a job exists before its
202 is sent, and every step the worker finishes is written here, so a retry or
a redelivery resumes instead of repeating.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, column_property, mapped_column

from models.base import Base, Timestamps
from models.orders import Order

QUEUED = "queued"
PROCESSING = "processing"
RETRYING = "retrying"
COMPLETED = "completed"
REJECTED = "rejected"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (QUEUED, PROCESSING, RETRYING, COMPLETED, REJECTED, FAILED, CANCELLED)
TERMINAL = (COMPLETED, REJECTED, FAILED, CANCELLED)
UNFINISHED = (QUEUED, PROCESSING, RETRYING)

# What the job does: place an order, or cancel one and give its units back.
KIND_PLACE = "place"
KIND_CANCEL = "cancel"

# Where the items come from, and whether the cart still has to be marked Ordered.
SOURCE_BODY = "body"
SOURCE_CART = "cart"
CART_NOT_NEEDED = "not_needed"
CART_PENDING = "pending"
CART_CLOSED = "closed"
CART_FAILED = "failed"

# Lanes: single orders (with cancellations and replays) and imports' lines are claimed by executions
# of their own (`placement.jobs.claim`), woken apart (`tasks.dispatch`), so that a large import never
# shares a batch, or a wake-up, with a single order. A job's lane: imports' if it has an import.
SINGLES = "singles"
IMPORTS = "imports"
LANES = (SINGLES, IMPORTS)


def _in(values):
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Job(Base, Timestamps):
    """One order submission and everything the worker has done for it so far."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(STATUSES)}", name="status_known"),
        CheckConstraint(f"resolution IS NULL OR resolution IN {_in((REJECTED, FAILED))}", name="resolution_known"),
        Index("ix_jobs_unfinished_next_run_at", "next_run_at", postgresql_where=text(f"status IN {_in(UNFINISHED)}")),
        Index("ix_jobs_cart_pending", "next_run_at", postgresql_where=text(f"cart_status = '{CART_PENDING}'")),
        Index("ix_jobs_processing_task_id", "task_id", postgresql_where=text(f"status = '{PROCESSING}'")),
        # Retention finds the oldest jobs by it; a column never updated, so it keeps updates HOT.
        Index("ix_jobs_created_at", "created_at"),
        # The claim's two scans (placement.jobs.CLAIM): single orders' due jobs, and imports'.
        Index("ix_jobs_unfinished_single_next_run_at", "next_run_at",
              postgresql_where=text(f"status IN {_in(UNFINISHED)} AND import_id IS NULL")),
        Index("ix_jobs_unfinished_imported_next_run_at", "next_run_at",
              postgresql_where=text(f"status IN {_in(UNFINISHED)} AND import_id IS NOT NULL")),
        # An import's lines, in order (its page of jobs, its counts).
        Index("ix_jobs_import_line", "import_id", "import_line", unique=True,
              postgresql_where=text("import_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    step: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8), default=KIND_PLACE, server_default=KIND_PLACE)
    # For a cancellation: the order it cancels (one cancellation job per order).
    cancels_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", use_alter=True), unique=True)
    # For a replay of a failed job: the job it replays (None once retention pruned that one).
    replay_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(String(8))
    # Items as submitted (None: take them from the cart), then as resolved by the worker.
    requested_items: Mapped[list | None] = mapped_column(JSONB)
    items: Mapped[list | None] = mapped_column(JSONB)
    error: Mapped[dict | None] = mapped_column(JSONB)
    # Set while stock is given back; the status the job ends with once that is done.
    resolution: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cart_status: Mapped[str] = mapped_column(String(16), default=CART_NOT_NEEDED)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # When the job is next due to run: at once when queued, after its backoff when retrying; while
    # an execution holds it, the time after which it counts as overdue (see placement.jobs.claim).
    next_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Where to POST the job's end (and its order's cancellation), signed; None: nobody asked.
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    # The Celery task (one execution, placing a batch) that last claimed the job: Flower's task id.
    task_id: Mapped[str | None] = mapped_column(String(155))
    # The W3C traceparent of the submission's request when tracing is on: the executions that place
    # the job link to it (observability.tracing), and GET /jobs/{id} shows its trace id.
    traceparent: Mapped[str | None] = mapped_column(String(55))
    # For a line of an import: the import, and the line's index in its request (from 0).
    import_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("imports.id"))
    import_line: Mapped[int | None] = mapped_column(Integer)

    @property
    def lane(self) -> str:
        """The lane whose executions claim the job (see SINGLES)."""
        return SINGLES if self.import_id is None else IMPORTS

    # The order this job created, once it completed: read with the job, in the same query.
    order_id: Mapped[int | None] = column_property(
        select(Order.id).where(Order.job_id == id).correlate_except(Order).scalar_subquery())


def in_lane(lane: str):
    """SQL: the job belongs to `lane` (see SINGLES)."""
    if lane not in LANES:
        raise ValueError(f"no lane {lane!r}; lanes: {', '.join(LANES)}")
    return Job.import_id.is_(None) if lane == SINGLES else Job.import_id.is_not(None)

"""The timeline: every state change and step of every job, for "what happened to my order?".

Events are written with `record`, in the same transaction as the change they
describe (or the same statement: the claim's `attempt_started`), so the
timeline never claims something that did not happen. The first event of every
job, `accepted`, has no row here: it is the job row itself (`timeline` reads
both), so a submission writes one row.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    Connection, DateTime, ForeignKey, Integer, Row, String, Text, bindparam, case, cast, func, insert, literal,
    select, union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base
from models.jobs import QUEUED, Job


class JobEvent(Base):
    """One thing that happened to a job: a status it reached, a step it started, an outcome."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
    event: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict | None] = mapped_column(JSONB)


jobs, job_events = Job.__table__, JobEvent.__table__


def event(job_id: uuid.UUID, name: str, status: str, attempt: int = 0, detail: dict | None = None) -> dict:
    """One event, as `record` takes it."""
    return {"job_id": job_id, "event": name, "status": status, "attempt": attempt, "detail": detail}


def record(connection: Connection | Session, events: Sequence[dict]) -> None:
    """Write events (from `event`) in the caller's transaction: one INSERT for them all."""
    if events:
        connection.execute(insert(job_events), list(events))


def _accepted_events():
    """Each job's `accepted` event, read from the job row: when it was created, and what it was
    created from (the cart or the body; the order it cancels; the job it replays)."""
    detail = case(
        (jobs.c.cancels_order_id.is_not(None), func.jsonb_build_object("cancels_order_id", jobs.c.cancels_order_id)),
        (jobs.c.replay_of.is_not(None), func.jsonb_build_object("replay_of", cast(jobs.c.replay_of, Text))),
        else_=func.jsonb_build_object("source", jobs.c.source),
    )
    return select(jobs.c.id.label("job_id"), jobs.c.created_at.label("at"), literal("accepted").label("event"),
                  literal(QUEUED).label("status"), literal(0).label("attempt"), detail.label("detail"),
                  literal(0).label("number"))


def _timeline_statement():
    job_ids = bindparam("job_ids", expanding=True)
    recorded = select(job_events.c.job_id, job_events.c.at, job_events.c.event, job_events.c.status,
                      job_events.c.attempt, job_events.c.detail, job_events.c.id.label("number"))
    every = union_all(_accepted_events().where(jobs.c.id.in_(job_ids)),
                      recorded.where(job_events.c.job_id.in_(job_ids))).subquery()
    return select(every.c.job_id, every.c.at, every.c.event, every.c.status, every.c.attempt,
                  every.c.detail).order_by(every.c.at, every.c.number)


_TIMELINE = _timeline_statement()


def timeline(connection: Connection | Session, job_ids: Sequence) -> list[Row]:
    """The events of these jobs, oldest first: each one's acceptance, then what was recorded since."""
    return connection.execute(_TIMELINE, {"job_ids": list(job_ids)}).all()

"""The timeline: every state change and step of every job, for "what happened to my order?".

Rows are written in the same transaction as the change they describe, so the
timeline never claims something that did not happen. The first event of every
job, `accepted`, has no row here: it is the job row itself (`placement.jobs.timeline`
reads both), so a submission writes one row.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base


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


def record(session: Session, job_id: uuid.UUID, event: str, status: str, attempt: int = 0,
           detail: dict | None = None) -> None:
    """Add an event to the caller's transaction."""
    session.add(JobEvent(job_id=job_id, event=event, status=status, attempt=attempt, detail=detail))

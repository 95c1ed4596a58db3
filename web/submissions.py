"""Turning a request into a durable job, in one short transaction the caller commits.

An Idempotency-Key makes a submission safe to repeat: the same key and the
same request give back the same job; the same key with anything else is a
conflict the client must see.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models.jobs import CART_NOT_NEEDED, QUEUED, SOURCE_BODY, SOURCE_CART, Job
from placement.items import normalize


class IdempotencyConflict(Exception):
    """The key was used before for a different request."""


@dataclass(frozen=True)
class Submission:
    """The job that answers the request, and whether this request created it."""

    job: Job
    created: bool


def fingerprint(customer_id: int, items: list[dict] | None) -> str:
    """What makes two requests 'the same request' for idempotency."""
    canonical = json.dumps({"customer_id": customer_id, "items": items}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit(session: Session, customer_id: int, items: list[dict] | None, idempotency_key: str | None,
           dispatch_deadline: float) -> Submission:
    """Insert the job (or find the one this key already made); the caller commits."""
    items = normalize(items) if items is not None else None
    values = dict(
        customer_id=customer_id,
        status=QUEUED,
        source=SOURCE_BODY if items is not None else SOURCE_CART,
        requested_items=items,
        attempts=0,
        cart_status=CART_NOT_NEEDED,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint(customer_id, items) if idempotency_key else None,
        next_run_at=func.now() + timedelta(seconds=dispatch_deadline),
    )
    statement = insert(Job).values(**values).returning(Job)
    if idempotency_key:
        statement = statement.on_conflict_do_nothing(index_elements=[Job.idempotency_key])
    job = session.scalars(statement).one_or_none()
    if job is not None:
        return Submission(job, created=True)
    existing = session.scalars(select(Job).where(Job.idempotency_key == idempotency_key)).one()
    if existing.request_fingerprint != values["request_fingerprint"]:
        raise IdempotencyConflict(idempotency_key)
    return Submission(existing, created=False)

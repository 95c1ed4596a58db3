"""Owing an event: delivery rows added to the transaction that makes the event true.

Called where a job ends or an order is cancelled, inside that transaction; the
caller publishes the returned delivery ids once it has committed.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import String, any_, bindparam, insert, select
from sqlalchemy.orm import Session

from models.jobs import CANCELLED, COMPLETED, FAILED, REJECTED, Job
from models.webhooks import (
    JOB_CANCELLED, JOB_COMPLETED, JOB_FAILED, JOB_REJECTED, ORDER_CANCELLED, WebhookDelivery, WebhookSubscription,
)

# Every job end runs this: built once, executed on the connection (no ORM work).
_SUBSCRIBERS = (select(WebhookSubscription.__table__.c.url, WebhookSubscription.__table__.c.id)
                .where(WebhookSubscription.__table__.c.active,
                       bindparam("event", type_=String()) == any_(WebhookSubscription.__table__.c.events)))
_JOB_EVENTS = {COMPLETED: JOB_COMPLETED, REJECTED: JOB_REJECTED, FAILED: JOB_FAILED, CANCELLED: JOB_CANCELLED}


def job_ended(session: Session, job, order_id: int | None) -> list[uuid.UUID]:
    """Owe the end of `job` (a Job or a row with its columns: completed, rejected, failed or
    cancelled) to its callback and subscribers."""
    return _owe(session, job.id, _JOB_EVENTS[job.status], {"job": _job(job, order_id)}, job.callback_url)


def order_cancelled(session: Session, cancelling: Job, order_id: int, placing: Job) -> list[uuid.UUID]:
    """Owe an order's cancellation to the callback of the job that placed it, and to subscribers."""
    data = {"order": {"order_id": order_id, "customer_id": cancelling.customer_id, "status": "Cancelled"},
            "job": _job(cancelling, None)}
    return _owe(session, cancelling.id, ORDER_CANCELLED, data, placing.callback_url)


def _job(job: Job, order_id: int | None) -> dict:
    return {"job_id": str(job.id), "kind": job.kind, "status": job.status, "customer_id": job.customer_id,
            "order_id": order_id, "cancels_order_id": job.cancels_order_id,
            "replay_of": str(job.replay_of) if job.replay_of else None, "error": job.error}


def _owe(session: Session, job_id: uuid.UUID, event: str, data: dict, callback_url: str | None) -> list[uuid.UUID]:
    targets: list[tuple[str, int | None]] = [(callback_url, None)] if callback_url else []
    targets.extend(tuple(row) for row in session.connection().execute(_SUBSCRIBERS, {"event": event}))
    if not targets:
        return []
    created_at = datetime.now(timezone.utc).isoformat()
    rows = []
    for url, subscription_id in targets:
        delivery_id = uuid.uuid4()
        rows.append({"id": delivery_id, "job_id": job_id, "subscription_id": subscription_id, "event": event,
                     "url": url, "payload": {"id": str(delivery_id), "type": event, "created_at": created_at,
                                             "data": data}})
    session.execute(insert(WebhookDelivery), rows)
    return [row["id"] for row in rows]

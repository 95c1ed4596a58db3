"""The outbox: the webhook deliveries a job's end (or an order's cancellation) owes, written as rows
in the transaction that makes the change, to the job's callback and every subscriber of the event.

The rows are sent later (`webhooks.sending`); whoever writes them publishes their
ids after the commit.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, String, bindparam, insert, select
from sqlalchemy.dialects.postgresql import ARRAY

from models.jobs import CANCELLED, COMPLETED, FAILED, REJECTED
from models.orders import CANCELLED as ORDER_CANCELLED
from models.webhooks import (
    JOB_CANCELLED, JOB_COMPLETED, JOB_FAILED, JOB_REJECTED, ORDER_CANCELLED as ORDER_CANCELLED_EVENT,
    WebhookDelivery, WebhookSubscription,
)

deliveries, subscriptions = WebhookDelivery.__table__, WebhookSubscription.__table__

_JOB_EVENTS = {COMPLETED: JOB_COMPLETED, REJECTED: JOB_REJECTED, FAILED: JOB_FAILED, CANCELLED: JOB_CANCELLED}

_SUBSCRIBERS = select(subscriptions.c.id, subscriptions.c.url, subscriptions.c.events).where(
    subscriptions.c.active, subscriptions.c.events.op("&&")(bindparam("events", type_=ARRAY(String()))))


@dataclass(frozen=True)
class JobEnd:
    """A job (its row, or anything with the job's columns) that ended `status`."""

    job: object
    status: str
    error: dict | None = None
    order_id: int | None = None


def job_payload(job, status: str, error: dict | None, order_id: int | None) -> dict:
    """The job as a delivery shows it."""
    return {"job_id": str(job.id), "kind": job.kind, "status": status, "customer_id": job.customer_id,
            "order_id": order_id, "cancels_order_id": job.cancels_order_id,
            "replay_of": str(job.replay_of) if job.replay_of else None, "error": error}


def write_job_ends(connection: Connection, ends: Sequence[JobEnd]) -> list[uuid.UUID]:
    """The deliveries owed for jobs that ended; their ids."""
    return _write(connection, [(end.job.id, _JOB_EVENTS[end.status],
                                {"job": job_payload(end.job, end.status, end.error, end.order_id)},
                                end.job.callback_url) for end in ends])


def write_order_cancelled(connection: Connection, job, order_id: int, callback_url: str | None) -> list[uuid.UUID]:
    """The deliveries owed for an order that the cancellation `job` cancelled (to the callback of the
    job that placed it); their ids."""
    data = {"order": {"order_id": order_id, "customer_id": job.customer_id, "status": ORDER_CANCELLED},
            "job": job_payload(job, COMPLETED, None, None)}
    return _write(connection, [(job.id, ORDER_CANCELLED_EVENT, data, callback_url)])


def _write(connection: Connection, owed: Sequence[tuple]) -> list[uuid.UUID]:
    """Delivery rows for [(job_id, event, data, callback_url)], in one INSERT; their ids."""
    if not owed:
        return []
    subscribers = connection.execute(_SUBSCRIBERS, {"events": sorted({event for _, event, _, _ in owed})}).all()
    created_at = datetime.now(timezone.utc).isoformat()
    rows = []
    for job_id, event, data, callback_url in owed:
        targets = [(callback_url, None)] if callback_url else []
        targets += [(s.url, s.id) for s in subscribers if event in s.events]
        for url, subscription_id in targets:
            delivery_id = uuid.uuid4()
            rows.append({"id": delivery_id, "job_id": job_id, "subscription_id": subscription_id, "event": event,
                         "url": url, "payload": {"id": str(delivery_id), "type": event, "created_at": created_at,
                                                 "data": data}})
    if rows:
        connection.execute(insert(deliveries), rows)
    return [row["id"] for row in rows]

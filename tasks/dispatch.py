"""Publishing wake-ups for jobs and webhook deliveries. The row is already committed; the
message only says 'look at it', so a lost one costs a delay (the sweeper), never the work."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from tasks import app

log = logging.getLogger(__name__)

PLACE_ORDER = "orders.place"
DELIVER_WEBHOOK = "webhooks.deliver"


def enqueue(job_id: uuid.UUID, countdown: float | None = None) -> bool:
    """Ask a worker to run the job; False when the broker is unreachable (the sweeper will)."""
    return _publish(PLACE_ORDER, job_id, countdown)


def enqueue_deliveries(delivery_ids: Iterable[uuid.UUID]) -> int:
    """Ask workers to send these webhook deliveries; returns how many were published."""
    return sum(_publish(DELIVER_WEBHOOK, delivery_id, None) for delivery_id in delivery_ids)


def _publish(task: str, row_id: uuid.UUID, countdown: float | None) -> bool:
    try:
        app.send_task(task, args=[str(row_id)], countdown=countdown)
    except Exception as exc:  # broker down: never fail the caller, the row is safe in PostgreSQL
        log.warning("could not publish %s %s (%s); the sweeper will dispatch it", task, row_id, exc)
        return False
    return True

"""Publishing wake-ups for jobs. The job is already committed; the message only says 'look at it'."""
from __future__ import annotations

import logging
import uuid

from tasks import app

log = logging.getLogger(__name__)

PLACE_ORDER = "orders.place"


def enqueue(job_id: uuid.UUID, countdown: float | None = None) -> bool:
    """Ask a worker to run the job; False when the broker is unreachable (the sweeper will)."""
    try:
        app.send_task(PLACE_ORDER, args=[str(job_id)], countdown=countdown)
    except Exception as exc:  # broker down: never fail the caller, the job is safe in PostgreSQL
        log.warning("could not publish job %s (%s); the sweeper will dispatch it", job_id, exc)
        return False
    return True

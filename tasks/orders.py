"""The order task: thin, like a view. It owns delivery and retries; placement owns the steps."""
from __future__ import annotations

import logging
import uuid

from tasks import app
from tasks.dispatch import PLACE_ORDER
from tasks.runtime import get_runtime

from placement.execution import execute

log = logging.getLogger(__name__)


@app.task(bind=True, name=PLACE_ORDER, max_retries=None)
def place_order(self, job_id: str) -> str:
    """Run job `job_id` as far as it goes; schedule the next attempt when placement asks for one."""
    try:
        job_uuid = uuid.UUID(job_id)
    except (TypeError, ValueError):
        log.error("dropping message with malformed job id %r", job_id)
        return "malformed"
    runtime = get_runtime()
    try:
        with runtime.placement() as ctx:
            outcome = execute(job_uuid, ctx, runtime.policy, runtime.settings.dispatch_deadline)
    except Exception as exc:  # the database itself failed: try again later, the job is safe
        delay = runtime.policy.delay(self.request.retries + 1)
        log.warning("job %s could not run (%s); retrying in %.1fs", job_id, exc, delay, exc_info=True)
        raise self.retry(countdown=delay, exc=exc) from None
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status

"""The order task: thin, like a view. It owns delivery, retries and reporting; placement owns the steps."""
from __future__ import annotations

import logging
import uuid

from observability import logs, metrics
from placement.execution import execute
from tasks import app
from tasks.dispatch import PLACE_ORDER
from tasks.runtime import get_runtime

log = logging.getLogger(__name__)


@app.task(bind=True, name=PLACE_ORDER, max_retries=None)
def place_order(self, job_id: str) -> str:
    """Run job `job_id` as far as it goes; schedule the next attempt when placement asks for one."""
    try:
        job_uuid = uuid.UUID(job_id)
    except (TypeError, ValueError, AttributeError):
        log.error("dropping message with malformed job id %r", job_id)
        return "malformed"
    token = logs.job_id.set(job_id)
    try:
        return _run(self, job_uuid)
    finally:
        logs.job_id.reset(token)


def _run(task, job_id: uuid.UUID) -> str:
    runtime = get_runtime()

    def report_step(step: str) -> None:
        """A task event named after the step: Flower shows it as the task's state (e.g. TAKING_STOCK)."""
        task.send_event(f"task-{step}", job_id=str(job_id))

    try:
        with runtime.placement(on_step=report_step) as ctx:
            outcome = execute(job_id, ctx, runtime.policy, runtime.settings.dispatch_deadline)
    except Exception as exc:  # the database itself failed: try again later, the job is safe
        delay = runtime.policy.delay(task.request.retries + 1)
        metrics.job_retries.labels("database").inc()
        log.warning("job %s could not run (%s); retrying in %.1fs", job_id, exc, delay, exc_info=True)
        raise task.retry(countdown=delay, exc=exc) from None
    if outcome.age is not None:
        metrics.jobs_finished.labels(outcome.status, outcome.code or "").inc()
        metrics.job_completion.labels(outcome.status).observe(outcome.age)
    log.info("job %s is %s%s", job_id, outcome.status, f" ({outcome.code})" if outcome.code else "")
    if outcome.retry_in is not None:
        metrics.job_retries.labels(outcome.code or "cart_update").inc()
        raise task.retry(countdown=outcome.retry_in)
    return outcome.status

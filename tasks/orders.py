"""The order task: thin, like a view. One execution claims a batch of its lane's due jobs (single
orders, or imports' lines: `models.jobs.SINGLES`) and hands it to placement; the task owns
delivery, wake-ups, retries of its own and reporting.

Flower shows each execution as one `orders.place` task: while it runs, its
state is the batch's step (TAKING_STOCK, ...); its result names every job it
handled with that job's status.
"""
from __future__ import annotations

import logging
import time

from models.jobs import LANES, SINGLES
from observability import logs, metrics, tracing
from placement.batch import place
from tasks import app
from tasks.dispatch import PLACE_ORDERS, busy, idle, wake_after, wake_another
from tasks.runtime import get_runtime

log = logging.getLogger(__name__)


# A claim of at most this many jobs finds its lane quiet: no crowd of submissions is waiting for the
# next claim to serve it together. The lane's flag then goes down at once, so a job submitted while
# this batch is placed wakes an execution of its own instead of waiting for this batch to end (bench
# bulk, single orders during an import: claimed within p99 24 ms instead of 249 ms; placed p99 275
# against 459 ms; the import's speed and CPU per order unchanged). A bigger claim keeps the flag up:
# under load, submissions are served together, batch after batch.
QUIET_CLAIM = 2

# How long one execution goes on claiming batch after batch before it hands over to a new one
# (a task that never ends would outlive Redis' visibility timeout and Celery's time limits).
WORK_SECONDS = 10.0


@app.task(bind=True, name=PLACE_ORDERS, max_retries=None, resultrepr_maxsize=65536)
def place_orders(self, *_earlier, lane: str = SINGLES) -> dict[str, str]:
    """Place the jobs of `lane` that are due, batch after batch, until none is; schedule wake-ups for
    those that retry. The result names every job placed, with its status.

    A wake-up names its lane and no job (`_earlier` swallows the job id of a message
    published by an earlier version, which knew one lane: single orders').
    """
    if lane not in LANES:  # a message no version of ours sent: retrying it would never help
        log.error("wake-up for an unknown lane %r dropped", lane)
        return {}
    runtime = get_runtime()

    def report_step(step: str) -> None:
        """A task event named after the step: Flower shows it as the task's state. Best effort: a
        broker outage must not stop the batch (the step is in the timeline anyway)."""
        try:
            self.send_event(f"task-{step}")
        except Exception as exc:  # whatever the transport raised: the event is only for Flower
            log.debug("step event %s not sent: %s", step, exc)

    spans = tracing.JobSpans()

    def claimed(batch) -> None:
        spans.claimed(batch)
        if len(batch) >= runtime.limits.batch_size:
            wake_another(lane)  # there may be more due jobs: let another execution take them meanwhile
        elif len(batch) <= QUIET_CLAIM:
            idle(lane)

    outcomes, stop_at, flag_up = {}, time.monotonic() + WORK_SECONDS, True
    try:
        with runtime.placement(on_step=report_step) as ctx:
            ctx.on_claimed = claimed
            while True:
                placed = place(ctx, self.request.id, runtime.limits, runtime.policy, lane)
                _report(placed, spans)
                outcomes.update(placed)
                if placed:
                    busy(lane)
                    flag_up = True
                    if time.monotonic() > stop_at:
                        wake_another(lane)
                        break
                elif flag_up:
                    # Nothing due: take the flag down, then claim once more, for jobs whose
                    # submissions saw the flag up and woke nobody.
                    idle(lane)
                    flag_up = False
                else:
                    break
    except Exception as exc:  # the database itself failed: its jobs come back to this task id
        # Whole seconds at least: RabbitMQ's delayed delivery refuses a countdown under one.
        delay = max(1.0, runtime.policy.delay(self.request.retries + 1))
        metrics.job_retries.labels("database").inc()
        log.warning("execution could not run (%s); retrying in %.1fs", exc, delay, exc_info=True)
        raise self.retry(countdown=delay, exc=exc) from None
    finally:
        spans.close()
    wake_after((outcome.retry_in for outcome in outcomes.values() if outcome.retry_in is not None), lane)
    return {str(job_id): outcome.status for job_id, outcome in outcomes.items()}


def _report(outcomes, spans: tracing.JobSpans) -> None:
    """Metrics and one log line per job, stamped with its id (and, in the job's span, its trace's)."""
    for job_id, outcome in outcomes.items():
        token = logs.job_id.set(str(job_id))
        try:
            with spans.finish(job_id, outcome.status, outcome.code):
                if outcome.age is not None:
                    metrics.jobs_finished.labels(outcome.status, outcome.code or "").inc()
                    metrics.job_completion.labels(outcome.status).observe(outcome.age)
                if outcome.retry_in is not None:
                    metrics.job_retries.labels(outcome.code or "cart_update").inc()
                log.info("job %s is %s%s", job_id, outcome.status, f" ({outcome.code})" if outcome.code else "")
        finally:
            logs.job_id.reset(token)

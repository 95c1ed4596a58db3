"""The webhook task: thin. It owns delivery and retries; webhooks.sending owns the HTTP and the record."""
from __future__ import annotations

import logging
import uuid

from observability import metrics
from tasks import app
from tasks.dispatch import DELIVER_WEBHOOK
from tasks.runtime import get_runtime

log = logging.getLogger(__name__)


@app.task(bind=True, name=DELIVER_WEBHOOK, max_retries=None)
def deliver_webhook(self, delivery_id: str) -> str:
    """Send delivery `delivery_id` once; schedule the next try when the receiver did not take it."""
    try:
        key = uuid.UUID(delivery_id)
    except (TypeError, ValueError, AttributeError):
        log.error("dropping message with malformed delivery id %r", delivery_id)
        return "malformed"
    try:
        sent = get_runtime().webhooks.send(key)
    except Exception as exc:  # the database itself failed: the row is safe, try again later
        delay = get_runtime().webhooks.policy.delay(self.request.retries + 1)
        log.warning("delivery %s could not run (%s); retrying in %.1fs", key, exc, delay, exc_info=True)
        raise self.retry(countdown=delay, exc=exc) from None
    metrics.webhook_attempts.labels(sent.status).inc()
    if sent.retry_in is not None:
        raise self.retry(countdown=sent.retry_in)
    return sent.status

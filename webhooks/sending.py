"""Sending one owed delivery: claim it, POST it signed, record the attempt, decide what next.

A delivery is claimed with a lease (one conditional UPDATE), so two messages
for the same delivery never send it at once; a worker that dies mid-send lets
the lease run out and the sweeper sends it again. Receivers should still
de-duplicate by the delivery id (`X-Order-Delivery`): delivery is at least once.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError
from sqlalchemy import func, or_, update
from sqlalchemy.orm import Session

from backoff import RetryPolicy
from models.webhooks import DELIVERED, GAVE_UP, PENDING, WebhookAttempt, WebhookDelivery
from process_local import ProcessLocal
from webhooks.signing import SIGNATURE_HEADER, signature
from webhooks.urls import Destination, UnsafeUrl, Unresolvable, resolve

log = logging.getLogger(__name__)

SKIPPED = "skipped"


@dataclass(frozen=True)
class Sent:
    """Where the delivery stands after this try, and when to try again if at all."""

    status: str
    retry_in: float | None = None


@dataclass(frozen=True)
class Sender:
    """What sending needs: transactions, the HTTP pool (one per process), the secret and the rules."""

    transaction: Callable[[], AbstractContextManager[Session]]
    http: ProcessLocal[urllib3.PoolManager]
    secret: str | None
    allow_private: bool
    timeout: float
    policy: RetryPolicy

    def send(self, delivery_id: uuid.UUID) -> Sent:
        """Try the delivery once if it is due and nobody else is sending it."""
        claimed = self._claim(delivery_id)
        if claimed is None:
            return Sent(SKIPPED)
        url, payload, attempt = claimed
        started = time.monotonic()
        status_code, error, permanent = self._post(delivery_id, url, payload)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return self._record(delivery_id, attempt, status_code, error, elapsed_ms, permanent)

    def _claim(self, delivery_id):
        lease = timedelta(seconds=self.timeout * 2 + 5)
        with self.transaction() as session:
            row = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING,
                       WebhookDelivery.next_attempt_at <= func.now() + timedelta(seconds=1),
                       or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < func.now()))
                .values(lease_until=func.now() + lease, attempts=WebhookDelivery.attempts + 1)
                .returning(WebhookDelivery.url, WebhookDelivery.payload, WebhookDelivery.attempts)
            ).one_or_none()
        return tuple(row) if row else None

    def _post(self, delivery_id, url: str, payload: dict) -> tuple[int | None, str | None, bool]:
        """The receiver's status code, the error if it was not a 2xx, and whether trying again is pointless."""
        if not self.secret:
            return None, "WEBHOOK_SECRET is not set on the worker; nothing can be signed", False
        try:
            destination = resolve(url, self.allow_private)
        except Unresolvable as exc:
            return None, str(exc), False
        except UnsafeUrl as exc:
            return None, f"refused: {exc}", True
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "order-service-webhooks",
                   "X-Order-Event": payload["type"], "X-Order-Delivery": str(delivery_id),
                   SIGNATURE_HEADER: signature(self.secret, body, int(time.time()))}
        try:
            response = post(self.http.get(), destination, body, headers, self.timeout)
        except HTTPError as exc:
            return None, f"{exc.__class__.__name__}: {exc}"[:1000], False
        if 200 <= response.status < 300:
            return response.status, None, False
        return response.status, f"the receiver answered {response.status}", False

    def _record(self, delivery_id, attempt: int, status_code, error, elapsed_ms: int, permanent: bool) -> Sent:
        with self.transaction() as session:
            session.add(WebhookAttempt(delivery_id=delivery_id, number=attempt, status_code=status_code,
                                       error=error, duration_ms=elapsed_ms))
            delivery = session.get(WebhookDelivery, delivery_id)
            delivery.lease_until = None
            delivery.last_error = error
            if error is None:
                delivery.status, delivery.delivered_at = DELIVERED, func.now()
                return Sent(DELIVERED)
            if permanent or attempt >= self.policy.max_attempts:
                delivery.status = GAVE_UP
                log.warning("webhook %s to %s given up after %d attempt(s): %s", delivery_id, delivery.url,
                            attempt, error)
                return Sent(GAVE_UP)
            delay = self.policy.delay(attempt)
            delivery.next_attempt_at = func.now() + timedelta(seconds=delay)
        log.info("webhook %s attempt %d failed (%s); retrying in %.1fs", delivery_id, attempt, error, delay)
        return Sent(PENDING, retry_in=delay)


def post(http: urllib3.PoolManager, destination: Destination, body: bytes, headers: dict,
         timeout: float) -> urllib3.BaseHTTPResponse:
    """POST to the first of the destination's checked addresses that takes the connection, as the
    client would try a name's addresses in turn, but without resolving the name again. The request
    still names the host: its Host header, and over TLS the server name sent and the one the
    certificate must match."""
    tls = {"server_hostname": destination.host, "assert_hostname": destination.host} \
        if destination.scheme == "https" else None
    refused: ConnectTimeoutError | None = None
    for address in destination.addresses:
        pool = http.connection_from_host(address, destination.port, destination.scheme, pool_kwargs=tls)
        try:
            return pool.urlopen("POST", destination.target, body=body,
                                headers={**headers, "Host": destination.host_header}, timeout=timeout,
                                redirect=False, retries=False, assert_same_host=False)
        except ConnectTimeoutError as exc:  # no connection (refused, timed out): nothing was sent, try the next
            refused = exc
    raise refused

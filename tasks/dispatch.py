"""Wake-ups: the broker's only job. The rows are already committed; a message only says "look",
so a lost one costs a delay (the sweeper), never the work.

Order executions claim whatever is due, so one wake-up serves any number of
jobs. A burst of submissions is coalesced by a short-lived flag in Redis that
says "an execution is on its way or at work": a submission publishes only when
it sets the flag (SET NX). A working execution keeps the flag up and claims
again after each batch; when a claim finds nothing it takes the flag down and
claims once more, so a job committed before that (whose submission saw the
flag and published nothing) is still claimed, and a job committed after it
sets the flag again and wakes another execution. The flag expires on its own
if its execution dies. When the flag's Redis cannot answer, the wake-up is
published anyway.
"""
from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable
from functools import lru_cache

import redis

from process_local import ProcessLocal
from tasks import app, app_settings

log = logging.getLogger(__name__)

PLACE_ORDERS = "orders.place"
DELIVER_WEBHOOK = "webhooks.deliver"
WAKE_UP_PENDING = "orders:wake-up-pending"
# Long enough to cover the moment between a publish and its execution's start, and one batch; when
# it lapses (a lost message, a dead execution) the next submission simply publishes again.
FLAG_TTL_MS = 3000
# Retry wake-ups are rounded up to whole seconds, so jobs retrying at nearly the same time share one,
# and because RabbitMQ's delayed delivery counts whole seconds (kombu refuses a countdown under one).
COUNTDOWN_STEP = 1.0


def _flags() -> ProcessLocal[redis.Redis]:
    return _flag_clients(app_settings().redis_url)


@lru_cache(maxsize=None)
def _flag_clients(url: str) -> ProcessLocal[redis.Redis]:
    return ProcessLocal(lambda: redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1))


def wake() -> bool:
    """Make sure an execution will look at the due jobs soon (call after the commit that made them
    due); False when the broker is unreachable (the sweeper will)."""
    try:
        raised = _flags().get().set(WAKE_UP_PENDING, 1, nx=True, px=FLAG_TTL_MS)
    except redis.RedisError as exc:
        log.debug("wake-up flag unavailable (%s); publishing", exc)
        return _publish(PLACE_ORDERS, [], None)
    if not raised:  # a wake-up is on its way, or an execution at work, and will see this job
        return True
    if _publish(PLACE_ORDERS, [], None):
        return True
    idle()  # nothing is on its way after all: let the next submission try again
    return False


def wake_another() -> bool:
    """Publish a wake-up whatever the flag says: a full batch leaves more due jobs, and another
    execution may take them while this one works."""
    return _publish(PLACE_ORDERS, [], None)


def wake_after(delays: Iterable[float]) -> int:
    """Wake-ups at these delays (retries), one per rounded-up time; how many were published."""
    countdowns = sorted({math.ceil(delay / COUNTDOWN_STEP) * COUNTDOWN_STEP for delay in delays})
    return sum(_publish(PLACE_ORDERS, [], countdown or None) for countdown in countdowns)


def busy() -> None:
    """An execution is at work and will claim again: submissions need not wake another."""
    _flag_call("set", WAKE_UP_PENDING, 1, px=FLAG_TTL_MS)


def idle() -> None:
    """No execution will claim again unless woken: later submissions must wake one."""
    _flag_call("delete", WAKE_UP_PENDING)


def _flag_call(command: str, *args, **kwargs) -> None:
    try:
        getattr(_flags().get(), command)(*args, **kwargs)
    except redis.RedisError as exc:  # the flag only saves messages; without it, each submission publishes
        log.debug("wake-up flag unavailable (%s)", exc)


def enqueue_deliveries(delivery_ids: Iterable[uuid.UUID]) -> int:
    """Ask workers to send these webhook deliveries; returns how many were published."""
    return sum(_publish(DELIVER_WEBHOOK, [str(delivery_id)], None) for delivery_id in delivery_ids)


def _publish(task: str, args: list, countdown: float | None) -> bool:
    try:
        app.send_task(task, args=args, countdown=countdown)
    except Exception as exc:  # broker down: never fail the caller, the rows are safe in PostgreSQL
        log.warning("could not publish %s %s (%s); the sweeper will dispatch it", task, args, exc)
        return False
    return True

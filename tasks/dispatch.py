"""Wake-ups: the broker's only job. The rows are already committed; a message only says "look",
so a lost one costs a delay (the sweeper), never the work.

Order executions claim whatever is due in their lane (`models.jobs.SINGLES`), so
one wake-up serves any number of jobs; a wake-up names its lane, nothing else. A
burst of submissions is coalesced by a short-lived flag per lane in Redis that
says "an execution of this lane is on its way or at work": a submission
publishes only when it sets the flag (SET NX). A working execution keeps the
flag up and claims again after each batch (unless its claim was a quiet one:
`tasks.orders.QUIET_CLAIM`); when a claim finds nothing it takes the flag down
and claims once more, so a job committed before that (whose
submission saw the flag and published nothing) is still claimed, and a job
committed after it sets the flag again and wakes another execution. The flag
expires on its own if its execution dies. When the flag's Redis cannot answer,
the wake-up is published anyway. Lanes have flags of their own so that an
execution at work on an import never stands for a single order's wake-up.
"""
from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable
from functools import lru_cache

import redis

from models.jobs import SINGLES
from process_local import ProcessLocal
from tasks import app, app_settings

log = logging.getLogger(__name__)

PLACE_ORDERS = "orders.place"
DELIVER_WEBHOOK = "webhooks.deliver"
# Long enough to cover the moment between a publish and its execution's start, and one batch; when
# it lapses (a lost message, a dead execution) the next submission simply publishes again.
FLAG_TTL_MS = 3000
# Retry wake-ups are rounded up to whole seconds, so jobs retrying at nearly the same time share one,
# and because RabbitMQ's delayed delivery counts whole seconds (kombu refuses a countdown under one).
COUNTDOWN_STEP = 1.0


def flag_key(lane: str) -> str:
    """The Redis key of `lane`'s wake-up flag."""
    return f"orders:wake-up-pending:{lane}"


def _flags() -> ProcessLocal[redis.Redis]:
    return _flag_clients(app_settings().redis_url)


@lru_cache(maxsize=None)
def _flag_clients(url: str) -> ProcessLocal[redis.Redis]:
    return ProcessLocal(lambda: redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1))


def wake(lane: str = SINGLES) -> bool:
    """Make sure an execution of `lane` will look at its due jobs soon (call after the commit that
    made them due); False when the broker is unreachable (the sweeper will)."""
    try:
        raised = _flags().get().set(flag_key(lane), 1, nx=True, px=FLAG_TTL_MS)
    except redis.RedisError as exc:
        log.debug("wake-up flag unavailable (%s); publishing", exc)
        return _wake_up(lane, None)
    if not raised:  # a wake-up is on its way, or an execution at work, and will see this job
        return True
    if _wake_up(lane, None):
        return True
    idle(lane)  # nothing is on its way after all: let the next submission try again
    return False


def wake_another(lane: str) -> bool:
    """Publish a wake-up of `lane` whatever the flag says: a full batch leaves more due jobs, and
    another execution may take them while this one works."""
    return _wake_up(lane, None)


def wake_after(delays: Iterable[float], lane: str) -> int:
    """Wake-ups of `lane` at these delays (retries), one per rounded-up time; how many were published."""
    countdowns = sorted({math.ceil(delay / COUNTDOWN_STEP) * COUNTDOWN_STEP for delay in delays})
    return sum(_wake_up(lane, countdown or None) for countdown in countdowns)


def busy(lane: str) -> None:
    """An execution of `lane` is at work and will claim again: submissions need not wake another."""
    _flag_call("set", flag_key(lane), 1, px=FLAG_TTL_MS)


def idle(lane: str) -> None:
    """No execution of `lane` will claim again unless woken: later submissions must wake one."""
    _flag_call("delete", flag_key(lane))


def _flag_call(command: str, *args, **kwargs) -> None:
    try:
        getattr(_flags().get(), command)(*args, **kwargs)
    except redis.RedisError as exc:  # the flag only saves messages; without it, each submission publishes
        log.debug("wake-up flag unavailable (%s)", exc)


def _wake_up(lane: str, countdown: float | None) -> bool:
    return _publish(PLACE_ORDERS, [], countdown, {"lane": lane})


def enqueue_deliveries(delivery_ids: Iterable[uuid.UUID]) -> int:
    """Ask workers to send these webhook deliveries; returns how many were published."""
    return sum(_publish(DELIVER_WEBHOOK, [str(delivery_id)], None) for delivery_id in delivery_ids)


def _publish(task: str, args: list, countdown: float | None, kwargs: dict | None = None) -> bool:
    try:
        app.send_task(task, args=args, kwargs=kwargs, countdown=countdown)
    except Exception as exc:  # broker down: never fail the caller, the rows are safe in PostgreSQL
        log.warning("could not publish %s %s (%s); the sweeper will dispatch it", task, args, exc)
        return False
    return True

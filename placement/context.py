"""What one execution (one batch) is handed: its connection, the peer clients, a way to wait on
several peer calls at once, and hooks for progress and webhook wake-ups.

Placement never builds these itself, so a batch is placed the same under a
Celery task, a CLI command or a plain test call.
"""
from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Connection, Row

from peers import Carts, Catalog

T = TypeVar("T")
R = TypeVar("R")


def _ignore_step(step: str) -> None:
    return None


def _ignore_deliveries(delivery_ids: Iterable[uuid.UUID]) -> None:
    return None


def _ignore_claim(jobs: Sequence[Row]) -> None:
    return None


@dataclass
class PlacementContext:
    """Dependencies of one execution. `connection` is in AUTOCOMMIT and holds the execution's
    advisory locks; `models.db.transaction(connection)` groups statements that commit together."""

    connection: Connection
    catalog: Catalog
    carts: Carts
    executor: Executor
    on_step: Callable[[str], None] = field(default=_ignore_step)
    # Called with the batch's jobs once they are claimed (a full batch may leave more due jobs).
    on_claimed: Callable[[Sequence[Row]], None] = field(default=_ignore_claim)
    # Called with webhook deliveries a committed transaction owes, to publish their wake-ups.
    announce: Callable[[Iterable[uuid.UUID]], object] = field(default=_ignore_deliveries)

    def gather(self, call: Callable[[T], R], args: Sequence[T]) -> list[R | Exception]:
        """`call` on each argument, concurrently; each result, or the exception it raised, in order.
        One call runs in the caller's thread: a batch of one waits on no pool. Each call runs in a
        copy of the caller's context (its log ids, the execution's span for the peer calls' spans)."""
        if len(args) == 1:
            return [_outcome(call, args[0])]
        runs = [(contextvars.copy_context(), arg) for arg in args]
        return list(self.executor.map(lambda run: run[0].run(_outcome, call, run[1]), runs))


def _outcome(call, arg):
    try:
        return call(arg)
    except Exception as exc:  # each call's failure is its own; the caller sorts them
        return exc

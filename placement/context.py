"""What one execution (one batch) is handed: its connection, the peer clients, a way to wait on
one peer call or several at once, and hooks for progress and webhook wake-ups.

Placement never builds these itself, so a batch is placed the same under a
Celery task, a CLI command or a plain test call.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Row

from peers import Carts, Catalog
from peers import http as peer_calls

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
    on_step: Callable[[str], None] = field(default=_ignore_step)
    # Called with the batch's jobs once they are claimed (a full batch may leave more due jobs).
    on_claimed: Callable[[Sequence[Row]], None] = field(default=_ignore_claim)
    # Called with webhook deliveries a committed transaction owes, to publish their wake-ups.
    announce: Callable[[Iterable[uuid.UUID]], object] = field(default=_ignore_deliveries)

    def gather(self, calls: Sequence[Coroutine[Any, Any, R]]) -> list[R | Exception]:
        """Peer calls at once; each result, or the exception it raised, in order. Each call runs in a
        copy of the caller's context (its log ids, the execution's span for the peer calls' spans)."""
        return peer_calls.gather(calls)

    def wait(self, call: Coroutine[Any, Any, R]) -> R:
        """One peer call; its result, or the exception it raised, raised here."""
        return peer_calls.wait(call)

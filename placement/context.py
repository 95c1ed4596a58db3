"""What one execution of a job is handed: transactions, peer clients, locks.

The placement logic never builds these itself, so it runs the same under a
Celery task, a CLI command or a plain test call.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
import uuid
from collections.abc import Iterable
from typing import Callable

from sqlalchemy import Result
from sqlalchemy.orm import Session

from peers import Carts, Catalog
from placement.locks import Locks


def _ignore_step(step: str) -> None:
    return None


def _ignore_deliveries(delivery_ids: Iterable[uuid.UUID]) -> None:
    return None


@dataclass
class PlacementContext:
    """Dependencies of one execution; `transaction()` opens one short committed unit of work,
    `run(statement, params)` runs a unit of work that is one statement (its rows, already read)."""

    transaction: Callable[[], AbstractContextManager[Session]]
    run: Callable[..., Result]
    catalog: Catalog
    carts: Carts
    locks: Locks
    on_step: Callable[[str], None] = field(default=_ignore_step)
    # Called with webhook deliveries a committed transaction owes, to publish their wake-ups.
    announce: Callable[[Iterable[uuid.UUID]], object] = field(default=_ignore_deliveries)

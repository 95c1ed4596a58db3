"""PostgreSQL advisory locks: one execution per job, one writer per product.

Session-level advisory locks belong to a connection, not to a transaction, so
holding one never keeps a transaction open across a peer call. An execution
takes them on the connection its short transactions also use, between those
transactions: one connection per running task. When a worker dies, PostgreSQL
drops its connection and with it every lock it held: no lease to expire, and
Redis restarts cannot lose a lock.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection, Engine

from models.db import driver_autocommit

# Key spaces, in the high bits of the 64-bit advisory key, so kinds never collide.
_JOB, _PRODUCT, _MIGRATION, _SWEEPER = 1, 2, 3, 4
MIGRATION_LOCK_KEY = _MIGRATION << 56
SWEEPER_LOCK_KEY = _SWEEPER << 56


def job_key(job_id: uuid.UUID) -> int:
    """Advisory key for a job: its UUID's first 48 bits in the job key space."""
    return (_JOB << 56) | int.from_bytes(job_id.bytes[:6], "big")


def product_key(product_id: int) -> int:
    """Advisory key for a product of the catalog."""
    return (_PRODUCT << 56) | product_id


class LockLost(RuntimeError):
    """The connection holding a lock broke, so the lock may be held by someone else now."""


class LockBusy(RuntimeError):
    """Another execution holds the lock and did not release it in time."""


class Locks:
    """Advisory locks held on one connection for the length of one task execution."""

    def __init__(self, connection: Connection, wait_seconds: float):
        self._connection = connection
        self._wait_ms = int(wait_seconds * 1000)

    @classmethod
    @contextmanager
    def open(cls, engine: Engine, wait_seconds: float = 10.0) -> Iterator["Locks"]:
        """A connection of their own for the locks of one pass (the sweeper's)."""
        with engine.connect() as connection, cls.on(connection, wait_seconds) as locks:
            yield locks

    @classmethod
    @contextmanager
    def on(cls, connection: Connection, wait_seconds: float = 10.0) -> Iterator["Locks"]:
        """Locks on `connection`, taken between its transactions; every one is released on exit."""
        locks = cls(connection, wait_seconds)
        locks._scalar(f"SET lock_timeout = {locks._wait_ms}")
        try:
            yield locks
        finally:
            try:
                locks._scalar("SELECT pg_advisory_unlock_all(); RESET lock_timeout")
            except Exception:  # the connection is broken: PostgreSQL already released its locks
                connection.invalidate()

    def _scalar(self, sql: str, **params):
        """Run one lock statement outside any transaction: in autocommit, one round trip
        (in a transaction it would be three: BEGIN, the statement, COMMIT)."""
        with driver_autocommit(self._connection) as driver, driver.cursor() as cursor:
            cursor.execute(sql, params or None)
            return cursor.fetchone()[0] if cursor.description else None

    def try_acquire(self, key: int) -> bool:
        """Take the lock if it is free, without waiting."""
        return bool(self._scalar("SELECT pg_try_advisory_lock(%(key)s)", key=key))

    def release(self, key: int) -> None:
        """Give a lock back."""
        self._scalar("SELECT pg_advisory_unlock(%(key)s)", key=key)

    def is_free(self, key: int) -> bool:
        """Whether nobody holds the lock right now (taken and given straight back)."""
        if self.try_acquire(key):
            self.release(key)
            return True
        return False

    @contextmanager
    def hold(self, key: int) -> Iterator[None]:
        """Wait (up to the configured time) for the lock, hold it for the block, then release it."""
        try:
            self._scalar("SELECT pg_advisory_lock(%(key)s)", key=key)
        except Exception as exc:
            raise LockBusy(f"advisory lock {key:#x} not free after {self._wait_ms} ms") from exc
        try:
            yield
        finally:
            self.release(key)

    def check_held(self, key: int) -> None:
        """Fencing check before an irreversible write: the lock must still be ours."""
        try:
            held = self._scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                " AND granted AND classid::bigint = %(hi)s AND objid::bigint = %(lo)s AND objsubid = 1",
                hi=(key >> 32) & 0xFFFFFFFF,
                lo=key & 0xFFFFFFFF,
            )
        except Exception as exc:
            raise LockLost(f"lock connection failed: {exc}") from exc
        if not held:
            raise LockLost(f"advisory lock {key:#x} is no longer held")

"""PostgreSQL advisory locks: the keys of every kind, and the statements that take them.

Session-level advisory locks belong to a connection, not to a transaction, so
holding one never keeps a transaction open across a peer call. A task
execution takes its locks on the one connection its statements also use; when
a worker dies, PostgreSQL drops that connection and with it every lock it held:
no lease to expire, and a Redis restart cannot lose a lock.

Kinds live in separate key spaces so they never collide: products, the
migration, the sweeper and retention use one 64-bit key with the kind in its high bits;
jobs use the two-key form (kind, hash of the job id), which PostgreSQL keeps
apart from the 64-bit form. Two jobs whose ids hash alike only wait for each
other, never share a lock holder's work.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, ColumnElement, Integer, Text, bindparam, cast, column, func, select, table
from sqlalchemy.dialects.postgresql import ARRAY

_JOB, _PRODUCT, _MIGRATION, _SWEEPER, _RETENTION = 1, 2, 3, 4, 5
MIGRATION_LOCK_KEY = _MIGRATION << 56
SWEEPER_LOCK_KEY = _SWEEPER << 56
RETENTION_LOCK_KEY = _RETENTION << 56


def product_key(product_id: int) -> int:
    """Advisory key of a product of the catalog."""
    return (_PRODUCT << 56) | product_id


def try_lock_job(job_id: ColumnElement) -> ColumnElement:
    """SQL: take the job's lock for this connection if it is free (true), else false at once."""
    return func.pg_try_advisory_lock(_JOB, func.hashtext(cast(job_id, Text)))


def try_lock_job_for_transaction(job_id: ColumnElement) -> ColumnElement:
    """SQL: the job's lock until the end of the current transaction, if it is free."""
    return func.pg_try_advisory_xact_lock(_JOB, func.hashtext(cast(job_id, Text)))


# Take the lock :key (a 64-bit key) if it is free: true, else false at once.
TRY_LOCK = select(func.pg_try_advisory_lock(bindparam("key", type_=BigInteger)))

_keys = func.unnest(bindparam("keys", type_=ARRAY(BigInteger))).table_valued("key").render_derived(name="held_keys")

# Wait for each key of :keys in the order given (the caller sorts them, so two holders of
# overlapping sets never deadlock); lock_timeout bounds the wait.
LOCK_ALL = select(func.count(func.pg_advisory_lock(_keys.c.key))).select_from(_keys)
UNLOCK_ALL = select(func.count(func.pg_advisory_unlock(_keys.c.key))).select_from(_keys)

# Every advisory lock of this connection, before it goes back to the pool.
UNLOCK_EVERYTHING = select(func.pg_advisory_unlock_all())

_held = table("pg_locks", column("locktype"), column("pid", Integer), column("granted"),
              column("classid", BigInteger), column("objid", BigInteger), column("objsubid", Integer))
# How many of :keys this connection holds: the fencing check before an irreversible write.
HELD_COUNT = select(func.count()).select_from(_held).where(
    _held.c.locktype == "advisory", _held.c.pid == func.pg_backend_pid(), _held.c.granted, _held.c.objsubid == 1,
    ((cast(_held.c.classid, BigInteger).op("<<")(32)).op("|")(cast(_held.c.objid, BigInteger)))
    == func.any(bindparam("keys", type_=ARRAY(BigInteger))),
)

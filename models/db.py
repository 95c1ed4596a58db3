"""The database of one process: one engine, its sessions, and transactions on a held connection.

A connection pool must never cross a fork (gunicorn workers, Celery's prefork
pool): `Database` builds its engine in the process that uses it
(`process_local`). Transaction modes go through SQLAlchemy's documented
`isolation_level` option on that one engine. Its connections are in
AUTOCOMMIT: reads, and writes that are one statement (atomic on its own), need
no BEGIN and COMMIT around them; most of the service's statements are such.
A unit of work of several statements asks for a transaction (`TRANSACTION`):
sessions from `session()` and `transaction()`, and `transaction(connection)` on
the connection a task execution holds.

Why AUTOCOMMIT is the engine's default rather than a mode switched to: psycopg2
leaves autocommit with a `SET default_transaction_isolation` round trip, and
SQLAlchemy puts a switched connection back to the default as it returns it to
the pool. That reset would cost every autocommit request a round trip, and it
can fail: when PostgreSQL goes away between a request's commit and its end, the
failed reset escapes from `close()` (a committed submission would answer 500)
and the connection never goes back to the pool (SQLAlchemy's checkin runs its
resets before returning the connection, outside its error handling). A switch
into AUTOCOMMIT is client-side in psycopg2: it cannot fail that way.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import psycopg2
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models.locks import UNLOCK_EVERYTHING
from process_local import ProcessLocal
from settings import ConfigError

AUTOCOMMIT = "AUTOCOMMIT"
TRANSACTION = "READ COMMITTED"
# libpq waits for a TCP connection as long as the OS does (minutes) unless told otherwise: a server
# that does not answer must fail a start-up, a request (503) or a task (retried) within seconds.
CONNECT_TIMEOUT_SECONDS = 5
# A pooled connection that has rested this long is pinged before use (see `_ping_if_rested`).
PING_AFTER_IDLE_SECONDS = 1.0


class Database:
    """Owns the engine and session factories of one process for one database URL."""

    def __init__(self, url: str, pool_size: int = 10, lock_timeout: float | None = None):
        self.url = url
        self.pool_size = pool_size
        # How long a statement may wait for a lock (advisory locks included); set at connect, so
        # it costs no round trip per use.
        self.lock_timeout = lock_timeout
        # Drop the parent's connections without closing the parent's sockets.
        self._engine = ProcessLocal(self._create_engine, on_fork=lambda engine: engine.dispose(close=False))
        self._factories = ProcessLocal(self._create_factories)

    def _create_engine(self) -> Engine:
        in_url = "connect_timeout" in make_url(self.url).query
        connect_args = {} if in_url else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        if self.lock_timeout is not None:
            connect_args["options"] = f"-c lock_timeout={int(self.lock_timeout * 1000)}"
        # values_plus_batch: an executemany UPDATE (a change of many jobs) goes as one round trip
        # (psycopg2's execute_batch) rather than one per row.
        engine = create_engine(self.url, pool_size=self.pool_size, max_overflow=self.pool_size,
                               isolation_level=AUTOCOMMIT, pool_recycle=1800, connect_args=connect_args,
                               executemany_mode="values_plus_batch")
        event.listen(engine, "checkin", _note_rest)
        event.listen(engine, "checkout", _ping_if_rested(engine.dialect))
        return engine

    def require_reachable(self) -> None:
        """Connect once at start-up: a server that cannot be reached then is a wrong DATABASE_URL
        (host, port, database, user or password) as far as the operator can tell, and says so."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except DBAPIError as exc:
            raise ConfigError(f"DATABASE_URL: cannot connect to PostgreSQL ({first_line(exc)})") from None

    def _create_factories(self) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
        engine = self.engine
        return (sessionmaker(engine.execution_options(isolation_level=TRANSACTION), expire_on_commit=False),
                sessionmaker(engine, expire_on_commit=False))

    @property
    def engine(self) -> Engine:
        """The engine of the current process, created on first use after any fork."""
        return self._engine.get()

    def session(self) -> Session:
        """A new session in transactions (READ COMMITTED); the caller owns its lifetime."""
        return self._factories.get()[0]()

    def autocommit_session(self) -> Session:
        """A new session whose statements each commit on their own, for reads and for a unit of work
        that is a single statement: a read sees what is committed, as under READ COMMITTED."""
        return self._factories.get()[1]()

    def autocommit_connection(self) -> Connection:
        """A new connection whose statements each commit on their own; the caller closes it."""
        return self.engine.connect()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One short unit of work: commit on success, roll back on error, always close."""
        with self.session() as session, session.begin():
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection held for a run of statements (one task execution), in AUTOCOMMIT: each
        statement commits alone; `transaction(connection)` groups several. Every advisory lock it
        took is released before it goes back to the pool (and with it, if the process dies)."""
        with self.engine.connect() as connection:
            try:
                yield connection
            finally:
                try:
                    connection.execute(UNLOCK_EVERYTHING)
                    connection.commit()
                except Exception:  # the connection is broken: PostgreSQL already released its locks
                    connection.invalidate()

    def dispose(self) -> None:
        """Close this process's connections (shutdown, tests)."""
        engine = self._engine.peek()
        if engine is not None:
            engine.dispose()
        self._engine.forget()
        self._factories.forget()


def _note_rest(_dbapi_connection, record) -> None:
    record.info["rests_since"] = time.monotonic()


def _ping_if_rested(dialect):
    """A checkout listener: ping a connection that rested in the pool for a while; a dead one is replaced at once.

    `pool_pre_ping` pings on every checkout: under load that is one more round trip per
    request, for connections used a few milliseconds ago. Here only a connection that rested
    past `PING_AFTER_IDLE_SECONDS` is pinged (after a quiet spell, a PostgreSQL restart, a
    network cut). A busy one that the server dropped fails its statement instead; SQLAlchemy
    then invalidates the whole pool (its optimistic disconnect handling), so one request per
    process sees the outage as a 503 (web.errors) and the next ones reconnect. Raising
    `DisconnectionError` from the checkout event is SQLAlchemy's documented way to have the pool
    replace the connection and try again.
    """
    def ping(dbapi_connection, record, _proxy) -> None:
        if time.monotonic() - record.info.get("rests_since", float("inf")) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"connection dropped while it rested in the pool: {exc}") from exc
    return ping


def first_line(exc: DBAPIError) -> str:
    """The driver's own message, first line only (libpq adds hints on the next ones)."""
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


def is_outage(exc: BaseException) -> bool:
    """Whether a database error is the database's, not a statement's: PostgreSQL unreachable,
    restarting or gone (SQLAlchemy marks the connection invalidated), or any other failure the
    driver classes as operational (a lock or statement timeout, a deadlock). Transient: the work
    is retried. A `DataError` (a value out of range, malformed) or an `IntegrityError` is about the
    data of the statement, and not an outage."""
    # psycopg2's own classes too: SQLAlchemy does not wrap every driver call (setting a connection's
    # isolation level raises the driver's error as it is).
    return isinstance(exc, (OperationalError, InterfaceError, psycopg2.OperationalError, psycopg2.InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


@contextmanager
def transaction(connection: Connection) -> Iterator[Connection]:
    """A transaction on an AUTOCOMMIT connection the caller holds: commit on success, roll back on
    error, and back to AUTOCOMMIT after."""
    connection.commit()  # closes SQLAlchemy's own bookkeeping of the autocommit statements before
    connection.execution_options(isolation_level=TRANSACTION)
    try:
        with connection.begin():
            yield connection
    finally:
        connection.execution_options(isolation_level=AUTOCOMMIT)

"""Engines and sessions, one set per process.

A connection pool must never cross a fork (gunicorn workers, Celery's prefork
pool): `Database` builds its engine lazily in the process that uses it and
forgets an inherited one after a fork.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection, Engine, Executable, Result, create_engine
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """Owns the engines and session factories of one process for one database URL."""

    def __init__(self, url: str, pool_size: int = 10):
        self.url = url
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._read_engine: Engine | None = None
        self._readers: sessionmaker[Session] | None = None

    def _create_engine(self, **options) -> Engine:
        return create_engine(self.url, pool_size=self.pool_size, max_overflow=self.pool_size,
                             pool_pre_ping=True, pool_recycle=1800, **options)

    @property
    def engine(self) -> Engine:
        """The engine of the current process, created on first use after any fork."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    for inherited in (self._engine, self._read_engine):
                        if inherited is not None:
                            # Drop the parent's connections without closing the parent's sockets.
                            inherited.dispose(close=False)
                    self._engine = self._create_engine()
                    self._sessions = sessionmaker(self._engine, expire_on_commit=False)
                    self._read_engine = self._readers = None
                    self._pid = os.getpid()
        return self._engine

    def session(self) -> Session:
        """A new session; the caller owns its lifetime."""
        self.engine  # noqa: B018 - make sure the factory belongs to this process
        return self._sessions()

    def autocommit_session(self) -> Session:
        """A new session whose statements each commit on their own, for reads and for a unit of work
        that is a single statement. Its connections (a pool of their own, made on first use) stay in
        autocommit: a read sees what is committed, as under READ COMMITTED, and nothing pays for a
        BEGIN and a COMMIT or ROLLBACK round trip around one statement."""
        self.engine  # noqa: B018 - make sure the factories belong to this process
        if self._readers is None:
            with self._lock:
                if self._readers is None:
                    self._read_engine = self._create_engine(isolation_level="AUTOCOMMIT")
                    self._readers = sessionmaker(self._read_engine, expire_on_commit=False)
        return self._readers()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One short unit of work: commit on success, roll back on error, always close."""
        with self.session() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close this process's connections (shutdown, tests)."""
        if self._pid == os.getpid():
            for engine in (self._engine, self._read_engine):
                if engine is not None:
                    engine.dispose()
        self._engine = self._read_engine = self._sessions = self._readers = None
        self._pid = None


@contextmanager
def transaction_on(connection: Connection) -> Iterator[Session]:
    """Like `Database.transaction`, on a connection the caller holds: a run of short units of
    work (one task execution) pays for one pool checkout and its liveness ping, not one each."""
    with Session(bind=connection, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def driver_autocommit(connection: Connection) -> Iterator[object]:
    """The driver's connection in autocommit for the block: each statement is then its own
    transaction, without a BEGIN and a COMMIT round trip around it. The switch is client-side
    (no round trip either); no transaction of `connection` may be open."""
    if connection.in_transaction():
        raise RuntimeError("a transaction is open on this connection")
    driver = connection.connection.dbapi_connection
    driver.autocommit = True
    try:
        yield driver
    finally:
        if not driver.closed:
            driver.autocommit = False


def execute_alone(connection: Connection, statement: Executable, params: dict | None = None) -> Result:
    """One statement as a unit of work of its own, on a connection the caller holds: one round trip
    instead of three. A single statement is atomic either way. Its rows are read before it returns."""
    with driver_autocommit(connection):
        try:
            result = connection.execute(statement, params)
            if result.returns_rows:
                result = result.freeze()()
        finally:
            connection.rollback()  # ends SQLAlchemy's own bookkeeping; the driver has nothing to end
    return result

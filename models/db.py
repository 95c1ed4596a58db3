"""Engines and sessions, one set per process.

A connection pool must never cross a fork (gunicorn workers, Celery's prefork
pool): `Database` builds its engine lazily in the process that uses it and
forgets an inherited one after a fork.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """Owns the engine and session factory of one process for one database URL."""

    def __init__(self, url: str, pool_size: int = 10):
        self.url = url
        self.pool_size = pool_size
        self._pid: int | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @property
    def engine(self) -> Engine:
        """The engine of the current process, created on first use after any fork."""
        if self._pid != os.getpid():
            if self._engine is not None:
                # Inherited from the parent: drop its connections without closing the parent's sockets.
                self._engine.dispose(close=False)
            self._engine = create_engine(
                self.url,
                pool_size=self.pool_size,
                max_overflow=self.pool_size,
                pool_pre_ping=True,
                pool_recycle=1800,
            )
            self._sessions = sessionmaker(self._engine, expire_on_commit=False)
            self._pid = os.getpid()
        return self._engine

    def session(self) -> Session:
        """A new session; the caller owns its lifetime."""
        self.engine  # noqa: B018 - make sure the factory belongs to this process
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One short unit of work: commit on success, roll back on error, always close."""
        with self.session() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close this process's connections (shutdown, tests)."""
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None
        self._pid = None


@contextmanager
def transaction_on(connection: Connection) -> Iterator[Session]:
    """Like `Database.transaction`, on a connection the caller holds: a run of short units of
    work (one task execution) pays for one pool checkout and its liveness ping, not one each."""
    with Session(bind=connection, expire_on_commit=False) as session, session.begin():
        yield session

"""Requests that wait for a job to end (`Prefer: wait=N`), woken by PostgreSQL, bounded per process.

A trigger on `jobs` (migration 3c5e1a7d9b20) sends `NOTIFY job_ended, '<job id>'` when a job
becomes completed, rejected, failed or cancelled, whoever changed it. One thread per API process
LISTENs on its own connection and wakes the requests waiting for that job; no request polls.

Under gunicorn's gthread workers a waiting request holds one of the process's threads, so at most
`limit` requests wait at once (MAX_WAITING_REQUESTS, below WEB_THREADS): the rest of the threads
stay free for submissions, and a request past the bound is answered at once.
"""
from __future__ import annotations

import logging
import select
import threading
import uuid
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from process_local import ProcessLocal

# The channel the migration's trigger notifies; the payload is the job's id.
CHANNEL = "job_ended"
# How long the listener sits idle before checking its connection is still alive.
IDLE_CHECK_SECONDS = 10.0
# How long it waits before connecting again after losing its connection.
RECONNECT_SECONDS = 1.0
# How the listening connection shows in pg_stat_activity.
APPLICATION_NAME = "order-service job waits"

log = logging.getLogger(__name__)


class JobWaits:
    """The waiting requests of one process, and the listener thread that wakes them."""

    def __init__(self, database_url: str, limit: int):
        self.database_url = database_url
        self.limit = limit
        self._lock = threading.Lock()
        # Started on first use, never before a fork: a thread does not survive one, and a
        # connection must not be shared across one.
        self._listener = ProcessLocal(self._new_listener)
        self._slots = threading.BoundedSemaphore(limit) if limit else None
        self._waiters: dict[str, set[threading.Event]] = defaultdict(set)
        self._closed = threading.Event()

    @contextmanager
    def waiting_for(self, job_id: uuid.UUID) -> Iterator[threading.Event | None]:
        """An event set when the job ends (or when the listener lost notifications and every waiter
        should look again); None when `limit` requests already wait in this process."""
        if self._slots is None or not self._slots.acquire(blocking=False):
            yield None
            return
        key, woken = str(job_id), threading.Event()
        try:
            self._start_listener()
            with self._lock:
                self._waiters[key].add(woken)
            yield woken
        finally:
            with self._lock:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(woken)
                    if not waiters:
                        del self._waiters[key]
            self._slots.release()

    def close(self) -> None:
        """Stop listening (the listener ends within IDLE_CHECK_SECONDS, or at once if its connection
        is closed), e.g. before the database goes away."""
        self._closed.set()
        self._wake(None)

    def _start_listener(self) -> None:
        """The listener thread of this process."""
        self._listener.get()

    def _new_listener(self) -> threading.Thread:
        with self._lock:
            self._waiters.clear()  # an inherited parent's waiters wait in the parent
        listener = threading.Thread(target=self._listen, name="job-waits-listener", daemon=True)
        listener.start()
        return listener

    def _wake(self, job_ids: set[str] | None) -> None:
        """Wake the waiters of these jobs; None: every waiter."""
        with self._lock:
            keys = list(self._waiters) if job_ids is None else [key for key in job_ids if key in self._waiters]
            for key in keys:
                for woken in self._waiters[key]:
                    woken.set()

    def _listen(self) -> None:
        """LISTEN forever, reconnecting after any loss. Notifications sent while it was not listening
        are lost, so after connecting it wakes every waiter to read its job again."""
        engine = create_engine(self.database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                               connect_args={"application_name": APPLICATION_NAME})
        while not self._closed.is_set():
            try:
                connection = engine.raw_connection()
            except Exception as exc:  # PostgreSQL down: waiters still time out; try again shortly
                log.warning("job waits: cannot connect to listen (%s); retrying", exc)
                self._closed.wait(RECONNECT_SECONDS)
                continue
            try:
                driver = connection.driver_connection
                with driver.cursor() as cursor:
                    cursor.execute(f"LISTEN {CHANNEL}")
                self._wake(None)
                self._relay(driver)
            except Exception as exc:  # a lost connection: connect again
                if not self._closed.is_set():
                    log.warning("job waits: listening connection lost (%s); reconnecting", exc)
                self._wake(None)
            finally:
                connection.invalidate()
            self._closed.wait(RECONNECT_SECONDS)

    def _relay(self, driver) -> None:
        """Pass each notification on to the waiters of its job, until the connection fails."""
        while not self._closed.is_set():
            readable, _, _ = select.select([driver], [], [], IDLE_CHECK_SECONDS)
            if not readable:
                with driver.cursor() as cursor:  # idle: make sure the connection still works
                    cursor.execute("SELECT 1")
            driver.poll()
            if driver.notifies:
                ended = {notify.payload for notify in driver.notifies}
                driver.notifies.clear()
                self._wake(ended)

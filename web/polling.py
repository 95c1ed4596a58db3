"""What a client polling a job is told: when to come back (Retry-After), whether anything changed
(ETag), and how long it may ask the server to hold its request (Prefer: wait=N, RFC 7240).

The long-running-operation guidance of the big REST style guides asks for all three, so clients
neither hammer `GET /jobs/{id}` nor fetch a job that has not changed.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from datetime import datetime, timezone

from flask import current_app
from werkzeug.http import parse_dict_header

from models.jobs import QUEUED, RETRYING, TERMINAL
from web.extensions import db

# The longest a request may be held (Prefer: wait=N with a larger N waits this long).
MAX_WAIT = 30
# A low estimate of how many jobs a deployment places a second: a queued job behind `backlog` others
# is told to come back in backlog / this seconds. Too low only makes a poller wait a little longer;
# too high would have it poll before its job can have moved.
JOBS_PER_SECOND_HINT = 50

TERMINAL_STATUSES = frozenset(TERMINAL)

RETRY_AFTER_DOC = {"description": "While the job is unfinished: seconds until a poll may find something new "
                                  "(queued: 1, more behind a backlog; retrying: until it is due again)",
                   "schema": {"type": "integer", "minimum": 1}}
# A 202's headers: where to poll, and when.
ACCEPTED_HEADERS = {"Location": {"description": "/jobs/{job_id}: where to poll", "schema": {"type": "string"}},
                    "Retry-After": RETRY_AFTER_DOC}


def retry_after(status: str, due_in: float | None, backlog: int) -> int | None:
    """Seconds until a poll may find something new; None once the job has ended.

    queued: 1, more behind a backlog (at most MAX_WAIT); processing: 1; retrying: until it is
    due to run again (`jobs.next_run_at`, `due_in` seconds from now), at least 1.
    """
    if status in TERMINAL_STATUSES:
        return None
    if status == RETRYING and due_in is not None:
        return max(1, math.ceil(due_in))
    if status == QUEUED:
        return min(MAX_WAIT, max(1, math.ceil(backlog / JOBS_PER_SECOND_HINT)))
    return 1  # processing (or retrying with no time set): it may end any moment


def retry_after_header(status: str, next_run_at: datetime | None) -> dict:
    """`{"Retry-After": seconds}` for an unfinished job, `{}` for one that ended; the backlog is
    counted (at most once a second per process) only for a queued job."""
    due_in = None
    if status == RETRYING and isinstance(next_run_at, datetime):
        due_in = (next_run_at - datetime.now(timezone.utc)).total_seconds()
    backlog = current_app.extensions["backlog"].count() if status == QUEUED else 0
    seconds = retry_after(status, due_in, backlog)
    return {} if seconds is None else {"Retry-After": str(seconds)}


def etag(*state) -> str:
    """A strong validator of a representation, from every value that changes during its life (a
    job's: status, attempts, updated_at, order and error; the others are fixed when it is created.
    `updated_at` alone would do if every writer set it; the rest make it exact whatever a writer forgets)."""
    encoded = json.dumps(list(state), sort_keys=True, default=_isoformat)
    return hashlib.sha1(encoded.encode(), usedforsecurity=False).hexdigest()[:20]


def _isoformat(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def held(state, read, pending, wait: int) -> tuple[object, bool]:
    """`Prefer: wait=N` for a resource made of jobs: `state` (as `read()` returns it) once `pending(state)`
    names no unfinished job or `wait` seconds passed, and whether the request was held (False when too
    many requests of this process wait already: it is answered at once). `pending` names the job to
    wait for; each time it ends the state is read again, until none is left."""
    deadline = time.monotonic() + wait
    waits = current_app.extensions["job_waits"]
    while True:
        job_id = pending(state)
        if job_id is None or deadline - time.monotonic() <= 0:
            return state, True
        with waits.waiting_for(job_id) as woken:
            if woken is None:
                return state, False
            state = read()  # read after registering, so an end committed meanwhile is seen
            while pending(state) == job_id and (remaining := deadline - time.monotonic()) > 0:
                db.release()
                woken.wait(remaining)
                woken.clear()
                state = read()


def requested_wait(prefer_headers: list[str]) -> int | None:
    """N of `Prefer: wait=N` (RFC 7240), at most MAX_WAIT; None when the client did not ask, or asked
    in a form the RFC does not allow (a preference the server does not understand is ignored)."""
    for header in prefer_headers:
        for name, value in parse_dict_header(header).items():
            if name.strip().lower() != "wait" or value is None:
                continue
            value = value.split(";", 1)[0].strip()
            if value.isascii() and value.isdigit():
                return min(int(value), MAX_WAIT)
    return None

"""How an execution leaves a job: one value per job, whatever step decided it.

An outcome is data, not an exception: a step that cannot take a job further
records why on the job's record and the batch goes on with the others.
Exceptions are left to what is exceptional (the database gone, a bug).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.exc import DataError

from models.jobs import COMPLETED, FAILED, REJECTED, RETRYING
from peers.errors import BadPeerResponse, PeerError, TransientPeerError


@dataclass(frozen=True)
class JobOutcome:
    """Where a job stands after this execution: its status, the code (and message, details) that
    ended or delayed it, when it runs again if it does, and its age once it is final (for the
    completion-time metric). `ends_as` is set on a job that must end but first gives back what an
    earlier attempt took: it retries at once, and ends with that status once the units are back."""

    status: str
    code: str | None = None
    message: str = ""
    details: dict | None = None
    retry_after: float | None = None  # a peer's lower bound for the retry
    retry_in: float | None = None
    age: float | None = None
    ends_as: str | None = None

    @property
    def error(self) -> dict | None:
        """The job's `error` field."""
        return None if self.code is None else {"code": self.code, "message": self.message, "details": self.details}

    def but(self, **changes) -> JobOutcome:
        return replace(self, **changes)


def completed() -> JobOutcome:
    return JobOutcome(COMPLETED)


def rejected(code: str, message: str, details: dict | None = None) -> JobOutcome:
    """A business outcome (empty cart, unknown product, not enough stock): retrying cannot change it."""
    return JobOutcome(REJECTED, code, message, details)


def failed(code: str, message: str, details: dict | None = None) -> JobOutcome:
    """The service could not do the work (retries exhausted, a peer breaking its contract)."""
    return JobOutcome(FAILED, code, message, details)


def waits(code: str, message: str, details: dict | None = None, retry_after: float | None = None) -> JobOutcome:
    """Not now: the job tries again after its backoff (a peer down, products busy)."""
    return JobOutcome(RETRYING, code, message, details, retry_after=retry_after)


def peer_failed(exc: PeerError) -> JobOutcome:
    """A peer's error: a broken contract ends the job; anything else is worth another try."""
    if isinstance(exc, BadPeerResponse):
        return failed(exc.code, str(exc), exc.details())
    retry_after = exc.retry_after if isinstance(exc, TransientPeerError) else None
    return waits(exc.code, str(exc), exc.details(), retry_after)


def fault(exc: Exception, data_code: str) -> JobOutcome:
    """A statement or step that failed for one job alone: a value PostgreSQL refused (`DataError`:
    out of range, malformed) is that job's data and ends it with `data_code`; anything else is a
    bug, retried with backoff (its traceback is logged where it was caught)."""
    if isinstance(exc, DataError):
        return failed(data_code, f"a value of this job cannot be stored: {str(exc.orig).strip().splitlines()[0]}",
                      {"error": exc.orig.__class__.__name__})
    return waits("internal_error", str(exc) or exc.__class__.__name__)

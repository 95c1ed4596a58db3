"""How a job ends when it does not complete, with the code clients see on it."""
from __future__ import annotations


class JobEnded(Exception):
    """A final outcome other than success; `status` is what the job will show."""

    status = "failed"

    def __init__(self, code: str, message: str, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def as_error(self) -> dict:
        """The job's `error` field."""
        return {"code": self.code, "message": self.message, "details": self.details}


class JobRejected(JobEnded):
    """A business outcome (empty cart, unknown product, not enough stock): retrying cannot change it."""

    status = "rejected"


class JobFailed(JobEnded):
    """The service could not do the work (retries exhausted, a peer breaking its contract)."""

    status = "failed"

"""The one way a view answers 202: commit the job, then publish its wake-up, then point at it (and
name it in the request's log line)."""
from __future__ import annotations

from models.jobs import RETRYING
from placement.jobs import Submission
from tasks.dispatch import wake
from web.extensions import db
from web.observe import name_job
from web.polling import retry_after_header


def accepted(result: Submission):
    """Commit (the job is now visible), wake an execution for a new job, answer 202 + Location, and
    while the job is unfinished, Retry-After: when polling it may find something new."""
    db.commit()
    job = result.job
    if result.created:
        wake()
    name_job(job.id)
    next_run_at = job.next_run_at if job.status == RETRYING else None
    return job, 202, {"Location": f"/jobs/{job.id}", **retry_after_header(job.status, next_run_at)}

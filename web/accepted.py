"""The one way a view answers 202: commit the job, point at it (and name it in the request's log
line), and once the answer has gone out, publish the job's wake-up."""
from __future__ import annotations

import contextvars

from flask import after_this_request

from models.jobs import RETRYING
from placement.jobs import Submission
from tasks.dispatch import wake
from web.extensions import db
from web.observe import name_job
from web.polling import retry_after_header


def accepted(result: Submission):
    """Commit (the job is now visible), answer 202 + Location, and while the job is unfinished,
    Retry-After: when polling it may find something new; for a new job, wake an execution once the
    answer is sent."""
    db.commit()
    job = result.job
    if result.created:
        after_this_request(_wake_once_answered)
    name_job(job.id)
    next_run_at = job.next_run_at if job.status == RETRYING else None
    return job, 202, {"Location": f"/jobs/{job.id}", **retry_after_header(job.status, next_run_at)}


def _wake_once_answered(response):
    """The wake-up's round trips to Redis (the flag; the publish when it was down) run when the server
    closes the sent answer (WSGI `close`), not while the client waits for it, in the request's context
    (its log ids; with tracing, the publish's span is a child of the request's). A process killed in
    between loses that wake-up, which the sweeper makes good, as it does any lost message."""
    request_context = contextvars.copy_context()
    response.call_on_close(lambda: request_context.run(wake))
    return response

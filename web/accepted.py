"""The one way a view answers 202: commit the job, then publish its wake-up, then point at it."""
from __future__ import annotations

from tasks.dispatch import enqueue
from web.extensions import db
from web.submissions import Submission


def accepted(result: Submission):
    """Commit (the job is now visible), publish only a new job, answer 202 + Location."""
    db.session.commit()
    if result.created:
        enqueue(result.job.id)
    return result.job, 202, {"Location": f"/jobs/{result.job.id}"}

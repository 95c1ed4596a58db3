"""The one way a view answers 202: commit the job, then publish its wake-up, then point at it."""
from __future__ import annotations

from tasks.dispatch import wake
from web.extensions import db
from placement.jobs import Submission


def accepted(result: Submission):
    """Commit (the job is now visible), wake an execution for a new job, answer 202 + Location."""
    db.session.commit()
    if result.created:
        wake()
    return result.job, 202, {"Location": f"/jobs/{result.job.id}"}

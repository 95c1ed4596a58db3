"""`/jobs/{job_id}`: where a client polls its submission."""
from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from models.jobs import Job
from web import auth
from web.extensions import db
from web.schemas import JobSchema

blp = Blueprint("jobs", __name__, url_prefix="/jobs", description="Poll submitted orders")


@blp.route("/<job_id>")
class JobById(MethodView):
    @blp.response(200, JobSchema)
    def get(self, job_id):
        """The job's state; 404 for an id that was never issued (malformed ones included)."""
        try:
            key = uuid.UUID(job_id)
        except ValueError:
            abort(404, message=f"Job {job_id} not found")
        job = db.session.get(Job, key)
        if job is None or not auth.current().may_act_for(job.customer_id):
            abort(404, message=f"Job {job_id} not found")
        return job

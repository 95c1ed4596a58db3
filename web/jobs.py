"""`/jobs/{job_id}`: where a client polls its submission, reads its timeline, cancels or replays it."""
from __future__ import annotations

import uuid

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import Row, bindparam, select

from models.jobs import Job
from models.orders import Order
from models.webhooks import WebhookDelivery
from web import auth, links, polling
from tasks.dispatch import enqueue_deliveries
from web.accepted import accepted
from web.extensions import db
from web.schemas import JobAcceptedSchema, JobSchema, TimelineSchema, WebhookDeliveryListSchema
from placement.jobs import NotAllowed, cancel_job, replay
from models.events import timeline as timeline_of

blp = Blueprint("jobs", __name__, url_prefix="/jobs", description="Poll, cancel and replay submitted orders")


_jobs = Job.__table__
# A job as JobSchema shows it. Clients poll it more than anything else, so it is a Core statement
# built once (found in SQLAlchemy's cache after the first call), read without the ORM.
_JOB_VIEW = select(
    _jobs.c.id, _jobs.c.customer_id, _jobs.c.kind, _jobs.c.cancels_order_id, _jobs.c.replay_of, _jobs.c.status,
    Job.order_id.expression.label("order_id"), _jobs.c.error, _jobs.c.attempts, _jobs.c.callback_url, _jobs.c.task_id,
    _jobs.c.traceparent, _jobs.c.created_at, _jobs.c.updated_at, _jobs.c.next_run_at,
).where(_jobs.c.id == bindparam("id"))

ETAG = {"description": "The job's version: send it back in If-None-Match to get 304 while it is unchanged",
        "schema": {"type": "string"}}
PREFERENCE_APPLIED = {"description": "wait=N: the request was held until the job ended or N seconds passed",
                      "schema": {"type": "string"}}
POLL_HEADERS = {"ETag": ETAG, "Retry-After": polling.RETRY_AFTER_DOC, "Preference-Applied": PREFERENCE_APPLIED}
PREFER = {"in": "header", "name": "Prefer", "required": False, "schema": {"type": "string"},
          "description": f"wait=N (RFC 7240): hold the request until the job ends or N seconds (at most "
                         f"{polling.MAX_WAIT}) pass. When too many requests already wait, the answer comes at "
                         f"once, without Preference-Applied. Other preferences are ignored."}
IF_NONE_MATCH = {"in": "header", "name": "If-None-Match", "required": False, "schema": {"type": "string"},
                 "description": "The ETag of a previous answer: 304 without a body while the job is unchanged"}


# The order a job placed: orders keep their job's id after retention pruned the job.
_ORDER_OF_JOB = select(Order.id, Order.customer_id).where(Order.job_id == bindparam("id"))


def _shown(job, job_id: str):
    """`job` if the caller may see it; 404 for an unknown or someone else's id, 410 for a pruned one.

    Retention (tasks.retention) deletes finished jobs after RETENTION_DAYS. When an order names the
    missing job (a completed order job), the job did exist: 410 Gone, with the order to read
    instead. Any other pruned job (rejected, failed, cancelled, a cancellation) left no trace and is
    a 404, like an id never issued.
    """
    if job is not None and auth.current().may_act_for(job.customer_id):
        return job
    if job is None:
        order = db.session.connection().execute(_ORDER_OF_JOB, {"id": _key(job_id)}).one_or_none()
        if order is not None and auth.current().may_act_for(order.customer_id):
            abort(410, message=f"Job {job_id} was pruned (finished jobs are kept for RETENTION_DAYS); "
                               f"its order is /orders/{order.id}")
    abort(404, message=f"Job {job_id} not found")


def _key(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        abort(404, message=f"Job {job_id} not found")


def visible_job(job_id: str, *, lock: bool = False) -> Job:
    """The job, to change it, if the caller may see it; 404 for an unknown, malformed or someone else's id."""
    return _shown(db.session.get(Job, _key(job_id), with_for_update=lock), job_id)


def job_view(job_id: str) -> Row:
    """The job, to show it (a row of `_JOB_VIEW`), under the same rule as `visible_job`."""
    return _shown(db.session.connection().execute(_JOB_VIEW, {"id": _key(job_id)}).one_or_none(), job_id)


def _unfinished(job: Row) -> uuid.UUID | None:
    """The job to wait for: the job itself until it ends."""
    return None if job.status in polling.TERMINAL_STATUSES else job.id


def timeline(*job_ids) -> dict:
    """The events of these jobs, oldest first."""
    return {"events": timeline_of(db.session, job_ids)}


@blp.route("/<job_id>")
class JobById(MethodView):
    @blp.response(200, JobSchema, headers=POLL_HEADERS)
    @blp.alt_response(304, description="The job is unchanged since the ETag sent in If-None-Match (no body)",
                      headers=POLL_HEADERS)
    @blp.alt_response(410, description="The job completed more than RETENTION_DAYS days ago and was pruned; "
                                       "the message names its order")
    @blp.doc(parameters=[PREFER, IF_NONE_MATCH], **links.documented(links.GET_JOB, 200, links.JOB))
    def get(self, job_id):
        """The job's state; 404 for an id that was never issued (malformed ones included), 410 for a
        completed job that retention pruned (its order stays).

        While the job is unfinished the answer says when to poll again (Retry-After); `Prefer: wait=N`
        holds the request until the job ends or N seconds pass. The ETag lets a poll answer 304.
        """
        job = job_view(job_id)
        headers = {}
        wait = polling.requested_wait(request.headers.getlist("Prefer"))
        if wait is not None:
            job, applied = polling.held(job, lambda: job_view(job_id), _unfinished, wait)
            if applied:
                headers["Preference-Applied"] = f"wait={wait}"
        tag = polling.etag(job.status, job.attempts, job.updated_at, job.order_id, job.error)
        headers.update({"ETag": f'"{tag}"', **polling.retry_after_header(job.status, job.next_run_at)})
        if request.if_none_match.contains_weak(tag):
            return current_app.response_class(status=304, headers=headers, content_type=None)
        return job, 200, headers


@blp.route("/<job_id>/events")
class JobEvents(MethodView):
    @blp.response(200, TimelineSchema)
    @blp.doc(**links.documented(links.GET_JOB_EVENTS))
    def get(self, job_id):
        """Every state change and step of the job: time, step, outcome, attempt, error."""
        return timeline(job_view(job_id).id)


@blp.route("/<job_id>/webhooks")
class JobWebhooks(MethodView):
    @blp.response(200, WebhookDeliveryListSchema)
    @blp.doc(**links.documented(links.GET_JOB_WEBHOOKS))
    def get(self, job_id):
        """The webhook deliveries this job's events owe, with every attempt (admins also see subscriptions')."""
        job = job_view(job_id)
        query = select(WebhookDelivery).where(WebhookDelivery.job_id == job.id)
        if not auth.current().admin:
            query = query.where(WebhookDelivery.subscription_id.is_(None))
        return {"deliveries": db.session.scalars(query.order_by(WebhookDelivery.created_at)).all()}


@blp.route("/<job_id>/cancel")
class JobCancel(MethodView):
    @blp.response(200, JobSchema)
    @blp.alt_response(409, description="The job has started or ended; it can no longer be cancelled")
    @blp.doc(**links.documented(links.CANCEL_JOB, 200, links.JOB))
    def post(self, job_id):
        """Cancel a job before it starts: it then never takes stock. Cancelling twice is harmless."""
        job = visible_job(job_id)
        try:
            cancelled = cancel_job(db.session, job)
        except NotAllowed as exc:
            abort(409, message=str(exc))
        db.session.commit()
        enqueue_deliveries(cancelled.owed)
        return cancelled.job


@blp.route("/<job_id>/retry")
class JobRetry(MethodView):
    @blp.response(202, JobAcceptedSchema, headers=polling.ACCEPTED_HEADERS)
    @blp.alt_response(403, description="Only an admin may replay jobs")
    @blp.alt_response(409, description="Only a failed order job can be replayed")
    @blp.doc(**links.documented(links.RETRY_JOB, 202, links.ACCEPTED))
    def post(self, job_id):
        """(admin) Replay a failed job: a new job does the work again; the failed one stays on record."""
        if not auth.current().admin:
            abort(403, message="Replaying jobs needs the orders:admin scope")
        failed = visible_job(job_id)
        try:
            result = replay(db.session, failed)
        except NotAllowed as exc:
            abort(409, message=str(exc))
        return accepted(result)

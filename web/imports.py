"""`/imports`: many orders in one request (202 + a job per line), and the import to follow.

Validation is all or nothing: a bad line, a line of another customer (for a customer's token) or a line
whose idempotency key was used for another order, and nothing is accepted; the answer names each such
line by its index in `orders`. The lines are written in one statement (placement.jobs.submit_many),
then one wake-up; each line is then an ordinary job (`/jobs/{job_id}`).
"""
from __future__ import annotations

import uuid

import flask
from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import bindparam, func, select

from models.imports import Import
from models.jobs import IMPORTS, QUEUED, STATUSES, UNFINISHED, Job
from observability import metrics
from placement.jobs import Line, submit_many
from settings import Settings
from tasks.dispatch import wake
from web import auth, links, polling
from web.extensions import db
from web.jobs import IF_NONE_MATCH, POLL_HEADERS, PREFER
from web.paging import PagedBlueprint, page_of
from web.schemas import ImportAcceptedSchema, ImportSchema, import_request_schema
from web.submissions import Submissions, json_only

jobs = Job.__table__
_COUNTS = (select(jobs.c.status, func.count(), func.max(jobs.c.updated_at), func.max(jobs.c.import_line))
           .where(jobs.c.import_id == bindparam("import_id")).group_by(jobs.c.status))
_LINE = select(jobs.c.id).where(jobs.c.import_id == bindparam("import_id"), jobs.c.import_line == bindparam("line"))
LOCATION = {"Location": {"description": "/imports/{import_id}: where to follow the import", "schema": {"type": "string"}}}


def _lines(indexes, field: str, why: str) -> dict:
    """`errors` naming lines as a validation error does: {"json": {"orders": {index: {field: [why]}}}}."""
    return {"json": {"orders": {str(index): {field: [why]} for index in indexes}}}


def _visible(import_id: str) -> Import:
    """The import, if the caller may see it (every line its own, or an admin); 404 otherwise."""
    try:
        imported = db.session.get(Import, uuid.UUID(import_id))
    except ValueError:
        imported = None
    if imported is None or not auth.current().may_act_for(imported.customer_id):
        abort(404, message=f"Import {import_id} not found")
    return imported


def _state(imported: Import, pagination_parameters) -> dict:
    """The import as ImportSchema shows it, with what its ETag is made of (`latest`) and the last of its
    unfinished lines (`last_unfinished`: the one a request waiting for the import waits for, likely the
    last to end), all from one snapshot of its counts."""
    rows = db.session.connection().execute(_COUNTS, {"import_id": imported.id}).all()
    counts = {status: 0 for status in STATUSES} | {status: count for status, count, _, _ in rows}
    page = page_of(select(Job).where(Job.import_id == imported.id), Job.import_line, pagination_parameters)
    unfinished = [line for status, _, _, line in rows if status in UNFINISHED]
    return {"id": imported.id, "customer_id": imported.customer_id, "lines": imported.lines,
            "created_at": imported.created_at, "counts": counts, "jobs": page, "done": not unfinished,
            "last_unfinished": max(unfinished, default=None),
            "latest": max((latest for _, _, latest, _ in rows), default=imported.created_at)}


def _waited_for(imported: Import, state: dict):
    """The job a request waiting for the import waits for now (None: every line's job ended)."""
    if state["done"]:
        return None
    return db.session.connection().scalar(_LINE, {"import_id": imported.id, "line": state["last_unfinished"]})


def make_blueprint(settings: Settings, submissions: Submissions) -> PagedBlueprint:
    """The imports routes: lines checked as `submissions` checks an order, at most MAX_IMPORT_LINES lines
    and MAX_IMPORT_BYTES bytes."""
    blp = PagedBlueprint("imports", __name__, url_prefix="/imports", description="Import many orders at once")
    request_schema = import_request_schema(submissions.request_schema, settings.max_import_lines)

    @blp.before_request
    def _limits():
        request.max_content_length = settings.max_import_bytes
        json_only()

    @blp.route("")
    class Imports(MethodView):
        @blp.arguments(request_schema())
        @blp.response(202, ImportAcceptedSchema, headers=LOCATION)
        @blp.alt_response(422, description="A bad line (or too many): `errors.json.orders` names each by its index "
                                           "and says why; nothing accepted")
        @blp.alt_response(409, description="Lines whose idempotency_key was used for another order (named in "
                                           "`errors.json.orders`); nothing accepted")
        @blp.alt_response(403, description="A customer token with lines of another customer (named in "
                                           "`errors.json.orders`); nothing accepted")
        @blp.alt_response(413, description=f"A body over MAX_IMPORT_BYTES ({settings.max_import_bytes} here)")
        @blp.alt_response(503, description="Too many orders still being processed (Retry-After)")
        @blp.doc(**links.documented(links.SUBMIT_IMPORT, 202, links.IMPORT_ACCEPTED))
        def post(self, body):
            """Accept many orders at once: a job per line, each placed like a single order.

            A line is a submission's body (`items`, or none to order the customer's cart; `callback_url`)
            with its `customer_id` and an optional `idempotency_key` (as a submission's Idempotency-Key:
            seen with the same order, the line is answered with that order's job, `created: false`).
            A customer's token may import only its own orders.
            """
            lines = [Line(order["customer_id"], order.get("items"), order.get("idempotency_key"),
                          order.get("callback_url")) for order in body["orders"]]
            principal = auth.current()
            foreign = [index for index, line in enumerate(lines) if not principal.may_act_for(line.customer_id)]
            if foreign:
                abort(403, message="A customer may only import its own orders",
                      errors=_lines(foreign, "customer_id", "not the customer of the token"))
            submissions.back_pressure.check()
            result = submit_many(db.session.connection(), lines)
            if result.conflicts:
                db.session.rollback()
                abort(409, message="Idempotency keys already used with a different order; nothing was accepted",
                      errors=_lines(result.conflicts, "idempotency_key", "already used with a different order"))
            db.commit()
            if result.created:
                wake(IMPORTS)
                metrics.jobs_accepted.inc(result.created)
            return ({"import_id": result.import_id, "lines": len(lines), "jobs": result.jobs}, 202,
                    {"Location": f"/imports/{result.import_id}"})

    @blp.route("/<import_id>")
    class ImportById(MethodView):
        @blp.response(200, ImportSchema, headers=POLL_HEADERS)
        @blp.alt_response(304, description="The import is unchanged since the ETag sent in If-None-Match (no body)",
                          headers=POLL_HEADERS)
        @blp.paginate()
        @blp.doc(parameters=[PREFER, IF_NONE_MATCH], **links.documented(links.GET_IMPORT))
        def get(self, import_id, pagination_parameters):
            """The import: its jobs' counts by status, and a page of its lines' jobs (in line order).

            While a job is unfinished the answer says when to poll again (Retry-After); `Prefer: wait=N`
            holds the request until every job ended or N seconds pass. The ETag lets a poll answer 304.
            """
            imported = _visible(import_id)
            state = _state(imported, pagination_parameters)
            headers = {}
            wait = polling.requested_wait(request.headers.getlist("Prefer"))
            if wait is not None:
                state, applied = polling.held(state, lambda: _state(imported, pagination_parameters),
                                              lambda current: _waited_for(imported, current), wait)
                if applied:
                    headers["Preference-Applied"] = f"wait={wait}"
            tag = polling.etag(state["counts"], state["latest"])
            headers.update({"ETag": f'"{tag}"', **({} if state["done"] else polling.retry_after_header(QUEUED, None))})
            if request.if_none_match.contains_weak(tag):
                # A paginated view returns data, not a response: the 304 is raised (Flask answers with it).
                flask.abort(current_app.response_class(status=304, headers=headers, content_type=None))
            return state, 200, headers

    return blp

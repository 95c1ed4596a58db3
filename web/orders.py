"""`/orders`: submit an order (202 + job), list orders, read one order.

The blueprint is built per app from its settings, so the limits it enforces
(items per order, quantity per product) are the ones its OpenAPI document shows.
"""
from __future__ import annotations

import re

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import bindparam, select

from models.orders import ORDERED, Order
from observability import metrics
from settings import Settings
from web import auth, links
from web.accepted import accepted
from web.backlog import Backlog
from web.extensions import db
from web.limits import BackPressure
from web.paging import PagedBlueprint, page_of
from web.polling import ACCEPTED_HEADERS
from models.jobs import Job
from web.jobs import timeline
from web.schemas import (
    JobAcceptedSchema, OrderListSchema, OrderQuerySchema, OrderSchema, TimelineSchema, order_request_schema,
)
from placement.jobs import IdempotencyConflict, NotAllowed, cancel_order, submit

IDEMPOTENCY_KEY_MAX = 255
_SAFE_KEY = re.compile(rf"[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}")
IDEMPOTENCY_HEADER = {"in": "header", "name": "Idempotency-Key", "required": False,
                      "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX,
                                 "pattern": "^[\\x21-\\x7e]+$"},
                      "description": "Same key and same request: the same job. Same key, other request: 409."}


def _path_id(description: str) -> dict:
    return {"in": "path", "name": "id", "required": True, "description": description,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}


def make_blueprint(settings: Settings, backlog: Backlog) -> Blueprint:
    """The orders routes, with the submission limits and backlog allowance of `settings`."""
    blp = PagedBlueprint("orders", __name__, url_prefix="/orders", description="Submit and read orders")
    request_schema = order_request_schema(settings.max_items_per_order, settings.max_item_quantity,
                                          webhooks_enabled=settings.webhook_secret is not None,
                                          allow_private=settings.webhook_allow_private)
    back_pressure = BackPressure(settings.max_unfinished_jobs, backlog)

    @blp.before_request
    def _json_only():
        """A body that is not JSON is refused, never mistaken for 'order my cart'."""
        if request.method == "POST" and request.content_length and not request.is_json:
            abort(415, message="Send the order as application/json, or no body to order the cart")

    # POST /orders/{customer_id} and GET /orders/{order_id} (the seed's contract) are one URL
    # template, so they are one OpenAPI path, /orders/{id}, whose id means what each method says.
    @blp.route("/<id:id>")
    class OrderResource(MethodView):
        @blp.arguments(request_schema(), required=False)
        @blp.response(202, JobAcceptedSchema, headers=ACCEPTED_HEADERS)
        @blp.alt_response(422, description="Invalid body or Idempotency-Key")
        @blp.alt_response(409, description="An Idempotency-Key already used for another request (another body, "
                                           "callback or customer): choose a new key")
        @blp.alt_response(403, description="A customer token for another customer")
        @blp.alt_response(503, description="Too many orders still being processed (Retry-After)")
        @blp.doc(parameters=[_path_id("The customer to place the order for"), IDEMPOTENCY_HEADER],
                 **links.documented("submitOrder", 202, links.ACCEPTED))
        def post(self, body, id):  # noqa: A002 - the URL's own name
            """Accept an order for the customer `id` and answer at once with the job to poll.

            With `items`, those are ordered (lines of one product are merged);
            without a body, the worker orders the customer's shopping cart. Send
            `Idempotency-Key` to make retries safe.
            """
            customer_id = id
            if not auth.current().may_act_for(customer_id):
                abort(403, message="A customer may only place its own orders")
            key = request.headers.get("Idempotency-Key")
            if key is not None and not _SAFE_KEY.fullmatch(key):
                abort(422, message=f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters")
            # The job is one row, one INSERT (placement.jobs._ACCEPT): no transaction,
            # and the backlog is counted on the same connection.
            connection = db.connection
            back_pressure.check()
            try:
                result = submit(connection, customer_id, body.get("items"), key, body.get("callback_url"))
            except IdempotencyConflict:
                abort(409, message="This Idempotency-Key was already used with a different request")
            answer = accepted(result)
            if result.created:
                metrics.jobs_accepted.inc()
            return answer

        @blp.response(200, OrderSchema)
        @blp.doc(parameters=[_path_id("The order")], **links.documented(links.GET_ORDER, 200, links.ORDER))
        def get(self, id):  # noqa: A002 - the URL's own name
            """The order `id` with its items."""
            return _visible_order(id)

    @blp.route("")
    class OrderList(MethodView):
        @blp.arguments(OrderQuerySchema(), location="query")
        @blp.response(200, OrderListSchema)
        @blp.paginate()
        @blp.doc(**links.documented("listOrders"))
        def get(self, filters, pagination_parameters):
            """List orders, oldest first, optionally for one customer or status (a customer sees only its own)."""
            query = select(Order)
            principal = auth.current()
            if not principal.admin:
                query = query.where(Order.customer_id == principal.customer_id)
            if "customer_id" in filters:
                query = query.where(Order.customer_id == filters["customer_id"])
            if "status" in filters:
                query = query.where(Order.status == filters["status"])
            return {"orders": page_of(query, Order.id, pagination_parameters)}

    @blp.route("/<id:id>/cancel")
    class OrderCancel(MethodView):
        @blp.response(202, JobAcceptedSchema, headers=ACCEPTED_HEADERS)
        @blp.alt_response(409, description="The order is not Ordered (and no cancellation of it exists), or "
                                           "its job was pruned (placed more than RETENTION_DAYS days ago)")
        @blp.doc(parameters=[_path_id("The order to cancel")],
                 **links.documented(links.CANCEL_ORDER, 202, links.ACCEPTED))
        def post(self, id):  # noqa: A002 - the URL's own name
            """Cancel an Ordered order: a job returns its units to the catalog, then marks it Cancelled.

            Asking again answers with the same job.
            """
            order = _visible_order(id)
            if order.status == ORDERED and db.session.scalar(_PLACING_JOB, {"id": order.job_id}) is None:
                abort(409, message=f"Order {id} can no longer be cancelled: its job, with the record of the "
                                   f"stock it took, was pruned (finished jobs are kept for RETENTION_DAYS)")
            try:
                result = cancel_order(db.session, order)
            except NotAllowed as exc:
                abort(409, message=str(exc))
            return accepted(result)

    @blp.route("/<id:id>/events")
    class OrderEvents(MethodView):
        @blp.response(200, TimelineSchema)
        @blp.doc(parameters=[_path_id("The order")], **links.documented(links.GET_ORDER_EVENTS))
        def get(self, id):  # noqa: A002 - the URL's own name
            """What happened to the order: its placing job's timeline, then its cancellation's."""
            order = _visible_order(id)
            jobs = [order.job_id, *db.session.scalars(select(Job.id).where(Job.cancels_order_id == order.id))]
            return timeline(*[job for job in jobs if job is not None])

    return blp


# The job that placed an order, while retention has not pruned it: a cancellation gives back its ledger.
_PLACING_JOB = select(Job.id).where(Job.id == bindparam("id"))


def _visible_order(order_id: int) -> Order:
    order = db.session.get(Order, order_id)
    if order is None or not auth.current().may_act_for(order.customer_id):
        abort(404, message=f"Order {order_id} not found")
    return order

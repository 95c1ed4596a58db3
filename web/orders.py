"""`/orders`: list orders, read, cancel one; and the seed's path of a submission (202 + job).

The blueprint is built per app: its submission enforces the app's limits (web.submissions).
"""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import bindparam, select

from models.orders import ORDERED, Order
from web import auth, links
from web.accepted import accepted
from web.extensions import db
from web.paging import PagedBlueprint, page_of
from web.polling import ACCEPTED_HEADERS
from models.jobs import Job
from web.jobs import timeline
from web.schemas import JobAcceptedSchema, OrderListSchema, OrderQuerySchema, OrderSchema, TimelineSchema
from web.submissions import Submissions, json_only
from placement.jobs import NotAllowed, cancel_order


def _path_id(description: str) -> dict:
    return {"in": "path", "name": "id", "required": True, "description": description,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}


def make_blueprint(submissions: Submissions) -> Blueprint:
    """The orders routes, submitting through `submissions` (the app's limits and backlog allowance)."""
    blp = PagedBlueprint("orders", __name__, url_prefix="/orders", description="Submit and read orders")

    blp.before_request(json_only)

    # POST /orders/{customer_id} and GET /orders/{order_id} (the seed's contract) are one URL
    # template, so they are one OpenAPI path, /orders/{id}, whose id means what each method says.
    # The POST is the seed's path, kept for its clients; POST /customers/{customer_id}/orders is the
    # submission's own (web/customers.py).
    @blp.route("/<id:id>")
    class OrderResource(MethodView):
        @submissions.view(blp, links.SUBMIT_ORDER_SEED_PATH, "$request.path.id",
                          [_path_id("The customer to place the order for")], deprecated=True)
        def post(self, body, id):  # noqa: A002 - the URL's own name
            """The seed's path of `POST /customers/{customer_id}/orders`, kept for its clients: `id` is the customer.

            With `items`, those are ordered (lines of one product are merged);
            without a body, the worker orders the customer's shopping cart. Send
            `Idempotency-Key` to make retries safe.
            """
            return submissions.accept(id, body)

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
        @blp.doc(**links.documented(links.LIST_ORDERS))
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

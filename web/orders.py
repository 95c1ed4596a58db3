"""`/orders`: submit an order (202 + job), list orders, read one order."""
from __future__ import annotations

import logging

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import func, select

from models.orders import Order
from observability import metrics
from settings import get_settings
from tasks.dispatch import enqueue
from web.extensions import db
from web.schemas import JobAcceptedSchema, OrderListSchema, OrderQuerySchema, OrderRequestSchema, OrderSchema
from web.submissions import IdempotencyConflict, submit

blp = Blueprint("orders", __name__, url_prefix="/orders", description="Submit and read orders")

IDEMPOTENCY_KEY_MAX = 255
log = logging.getLogger(__name__)


@blp.before_request
def _json_only():
    """A body that is not JSON is refused, never mistaken for 'order my cart'."""
    if request.method == "POST" and request.content_length and not request.is_json:
        abort(415, message="Send the order as application/json, or no body to order the cart")


@blp.route("/<id:customer_id>")
class OrderSubmission(MethodView):
    @blp.arguments(OrderRequestSchema, required=False)
    @blp.response(202, JobAcceptedSchema, headers={"Location": {"description": "/jobs/{job_id}", "schema": {"type": "string"}}})
    @blp.alt_response(422, description="Invalid body, or an Idempotency-Key reused for another request")
    def post(self, body, customer_id):
        """Accept an order for the customer and answer at once with the job to poll.

        With `items`, those are ordered; without a body, the worker orders the
        customer's shopping cart. Send `Idempotency-Key` to make retries safe.
        """
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
            abort(422, message=f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
        session = db.session
        try:
            result = submit(session, customer_id, body.get("items"), key, get_settings().dispatch_deadline)
        except IdempotencyConflict:
            abort(422, message="This Idempotency-Key was already used with a different request")
        session.commit()
        if result.created:
            metrics.jobs_accepted.inc()
            log.info("accepted job %s for customer %s (%s)", result.job.id, customer_id, result.job.source)
            enqueue(result.job.id)
        return result.job, 202, {"Location": f"/jobs/{result.job.id}"}


@blp.route("")
class OrderList(MethodView):
    @blp.arguments(OrderQuerySchema, location="query")
    @blp.response(200, OrderListSchema)
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List orders, oldest first, optionally for one customer or status."""
        query = select(Order)
        if "customer_id" in filters:
            query = query.where(Order.customer_id == filters["customer_id"])
        if "status" in filters:
            query = query.where(Order.status == filters["status"])
        session = db.session
        pagination_parameters.item_count = session.scalar(select(func.count()).select_from(query.subquery()))
        page = session.scalars(
            query.order_by(Order.id).offset(pagination_parameters.first_item).limit(pagination_parameters.page_size)
        ).all()
        return {"orders": page}


@blp.route("/<id:order_id>")
class OrderById(MethodView):
    @blp.response(200, OrderSchema)
    def get(self, order_id):
        """One order with its items."""
        order = db.session.get(Order, order_id)
        if order is None:
            abort(404, message=f"Order {order_id} not found")
        return order

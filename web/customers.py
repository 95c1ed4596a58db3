"""`/customers/{customer_id}/orders`: submit an order for the customer (202 + job), and the seed's
per-customer listing, moved off `/orders/{id}`."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select

from models.orders import Order
from web import auth, links
from web.extensions import db
from web.schemas import OrderListSchema
from web.submissions import Submissions, json_only


def make_blueprint(submissions: Submissions) -> Blueprint:
    """The customers routes, submitting through `submissions` (the app's limits and backlog allowance)."""
    blp = Blueprint("customers", __name__, url_prefix="/customers", description="Orders of one customer")
    blp.before_request(json_only)

    @blp.route("/<id:customer_id>/orders")
    class CustomerOrders(MethodView):
        @submissions.view(blp, links.SUBMIT_ORDER, "$request.path.customer_id")
        def post(self, body, customer_id):
            """Accept an order for the customer and answer at once with the job to poll.

            With `items`, those are ordered (lines of one product are merged);
            without a body, the worker orders the customer's shopping cart. Send
            `Idempotency-Key` to make retries safe. Many orders at once: `POST /imports`.
            """
            return submissions.accept(customer_id, body)

        @blp.response(200, OrderListSchema)
        @blp.doc(**links.documented("listCustomerOrders"))
        def get(self, customer_id):
            """All orders of the customer, oldest first; 404 when there are none (as the seed)."""
            if not auth.current().may_act_for(customer_id):
                abort(404, message=f"Orders for customer with id: {customer_id} were not found")
            orders = db.session.scalars(
                select(Order).where(Order.customer_id == customer_id).order_by(Order.id)).all()
            if not orders:
                abort(404, message=f"Orders for customer with id: {customer_id} were not found")
            return {"orders": orders}

    return blp

"""Submitting one order (202 + a job to poll): what `POST /customers/{customer_id}/orders` and the seed's
`POST /orders/{customer_id}` share, built per app from its settings, so the limits it enforces (items per
order, quantity per product) are the ones its OpenAPI document shows."""
from __future__ import annotations

from flask import request
from flask_smorest import Blueprint, abort

from observability import metrics
from placement.jobs import IdempotencyConflict, submit
from settings import Settings
from web import auth, links
from web.accepted import accepted
from web.backlog import Backlog
from web.extensions import db
from web.limits import BackPressure
from web.polling import ACCEPTED_HEADERS
from web.schemas import (
    IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN, JobAcceptedSchema, order_request_schema,
)

IDEMPOTENCY_HEADER = {"in": "header", "name": "Idempotency-Key", "required": False,
                      "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX,
                                 "pattern": IDEMPOTENCY_KEY_PATTERN},
                      "description": "Same key and same request: the same job. Same key, other request: 409."}


def json_only() -> None:
    """A `before_request` of blueprints taking orders: a body that is not JSON is refused, never
    mistaken for 'order my cart'."""
    if request.method == "POST" and request.content_length and not request.is_json:
        abort(415, message="Send the order as application/json, or no body to order the cart")


class Submissions:
    """The submission of one order under `settings`' limits and backlog allowance."""

    def __init__(self, settings: Settings, backlog: Backlog):
        self.request_schema = order_request_schema(settings.max_items_per_order, settings.max_item_quantity,
                                                   webhooks_enabled=settings.webhook_secret is not None,
                                                   allow_private=settings.webhook_allow_private)
        self.back_pressure = BackPressure(settings.max_unfinished_jobs, backlog)

    def view(self, blp: Blueprint, operation_id: str, customer_id: str, parameters=(), deprecated: bool = False):
        """The decorators of a submission view on `blp`: its body, answers and documentation (`customer_id`:
        the request's expression for the customer, for its links)."""
        decorators = [
            blp.arguments(self.request_schema(), required=False),
            blp.response(202, JobAcceptedSchema, headers=ACCEPTED_HEADERS),
            blp.alt_response(422, description="Invalid body or Idempotency-Key"),
            blp.alt_response(409, description="An Idempotency-Key already used for another request (another "
                                              "body, callback or customer): choose a new key"),
            blp.alt_response(403, description="A customer token for another customer"),
            blp.alt_response(503, description="Too many orders still being processed (Retry-After)"),
            blp.doc(parameters=[*parameters, IDEMPOTENCY_HEADER], **({"deprecated": True} if deprecated else {}),
                    **links.documented(operation_id, 202, links.submitted(customer_id))),
        ]

        def decorate(function):
            for decorator in reversed(decorators):
                function = decorator(function)
            return function
        return decorate

    def accept(self, customer_id: int, body: dict):
        """Accept an order for `customer_id` and answer 202 with the job to poll."""
        if not auth.current().may_act_for(customer_id):
            abort(403, message="A customer may only place its own orders")
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            abort(422, message=f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters")
        # The job is one row, one INSERT (placement.jobs._ACCEPT): no transaction,
        # and the backlog is counted on the same connection.
        connection = db.connection
        self.back_pressure.check()
        try:
            result = submit(connection, customer_id, body.get("items"), key, body.get("callback_url"))
        except IdempotencyConflict:
            abort(409, message="This Idempotency-Key was already used with a different request")
        answer = accepted(result)
        if result.created:
            metrics.jobs_accepted.inc()
        return answer

"""Request and response shapes; they generate the OpenAPI document."""
from marshmallow import Schema, ValidationError, fields, validate, validates

from models.jobs import STATUSES
from models.orders import ORDER_STATUSES
from models.webhooks import DELIVERY_STATUSES, EVENT_TYPES
from placement.items import INT32_MAX
from webhooks.urls import MAX_LENGTH as URL_MAX, UnsafeUrl, check_destination, check_form

_ID = validate.Range(min=1, max=INT32_MAX)


class ItemSchema(Schema):
    """One line of an order."""

    product_id = fields.Integer(required=True, strict=True, validate=_ID)
    quantity = fields.Integer(required=True, strict=True, validate=_ID)


def _well_formed(url: str) -> None:
    try:
        check_form(url)
    except UnsafeUrl as exc:
        raise ValidationError(f"unusable URL: {exc}") from None


def callback_url_field(webhooks_enabled: bool, allow_private: bool, **kwargs) -> fields.String:
    """A URL the service will POST signed events to: http(s), and public unless allowed otherwise."""

    def check(url: str) -> None:
        if not webhooks_enabled:
            raise ValidationError("webhooks are not enabled on this service (WEBHOOK_SECRET is not set)")
        try:
            check_destination(url, allow_private)
        except UnsafeUrl as exc:
            raise ValidationError(f"unusable callback URL: {exc}") from None

    return fields.String(validate=[validate.Length(min=1, max=URL_MAX), check], **kwargs)


def order_request_schema(max_items: int, max_quantity: int, webhooks_enabled: bool = False,
                         allow_private: bool = False) -> type[Schema]:
    """The body of a submission under these limits; without `items` the customer's cart is ordered.

    Lines of the same product are merged (quantities added); the merged
    quantity must stay within `max_quantity` too.
    """

    class LimitedItemSchema(ItemSchema):
        quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=max_quantity))

    class OrderRequestSchema(Schema):
        items = fields.List(fields.Nested(LimitedItemSchema), validate=validate.Length(min=1, max=max_items))
        callback_url = callback_url_field(webhooks_enabled, allow_private, metadata={
            "description": "Where to POST a signed event when the job ends and if its order is cancelled "
                           "(http or https; a public address unless the operator allowed private ones)"})

        @validates("items")
        def _merged_within_limits(self, items, **_):
            totals: dict[int, int] = {}
            for item in items:
                if isinstance(item, dict) and "product_id" in item and "quantity" in item:  # others already failed
                    totals[item["product_id"]] = totals.get(item["product_id"], 0) + item["quantity"]
            over = sorted(pid for pid, qty in totals.items() if qty > max_quantity)
            if over:
                raise ValidationError(f"merged quantity of product(s) {over} is over the limit of {max_quantity}")

    return OrderRequestSchema


class JobAcceptedSchema(Schema):
    """Answer to a submission: where to poll."""

    job_id = fields.UUID(attribute="id")
    status = fields.String()
    customer_id = fields.Integer()


class ErrorDetailSchema(Schema):
    """Why a job did not complete."""

    code = fields.String()
    message = fields.String()
    details = fields.Raw(allow_none=True)


class JobSchema(Schema):
    """A job as clients poll it."""

    job_id = fields.UUID(attribute="id")
    customer_id = fields.Integer()
    kind = fields.String(metadata={"enum": ["place", "cancel"]})
    cancels_order_id = fields.Integer(allow_none=True)
    replay_of = fields.UUID(allow_none=True)
    status = fields.String(metadata={"enum": list(STATUSES)})
    order_id = fields.Integer(allow_none=True)
    error = fields.Nested(ErrorDetailSchema, allow_none=True)
    attempts = fields.Integer()
    callback_url = fields.String(allow_none=True)
    task_id = fields.String(allow_none=True, metadata={
        "description": "The Celery task (see Flower) of the execution that last handled the job"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class OrderItemSchema(Schema):
    """One ordered product."""

    product_id = fields.Integer()
    quantity = fields.Integer()


class OrderSchema(Schema):
    """An order with its items, as in the seed plus its creation time."""

    id = fields.Integer()
    customer_id = fields.Integer()
    status = fields.String()
    items = fields.List(fields.Nested(OrderItemSchema))
    created_at = fields.DateTime()


class OrderListSchema(Schema):
    """The seed's `{"orders": [...]}` envelope."""

    orders = fields.List(fields.Nested(OrderSchema))


class OrderQuerySchema(Schema):
    """Filters of `GET /orders`."""

    customer_id = fields.Integer(validate=_ID)
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))


class EventSchema(Schema):
    """One entry of a job's timeline."""

    job_id = fields.UUID()
    at = fields.DateTime()
    event = fields.String()
    status = fields.String()
    attempt = fields.Integer()
    detail = fields.Raw(allow_none=True)


class TimelineSchema(Schema):
    """What happened, oldest first."""

    events = fields.List(fields.Nested(EventSchema))


class WebhookAttemptSchema(Schema):
    """One POST of a delivery."""

    number = fields.Integer()
    at = fields.DateTime()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class WebhookDeliverySchema(Schema):
    """An event owed to one URL, with every attempt at sending it."""

    delivery_id = fields.UUID(attribute="id")
    job_id = fields.UUID()
    subscription_id = fields.Integer(allow_none=True)
    event = fields.String(metadata={"enum": list(EVENT_TYPES)})
    url = fields.String()
    status = fields.String(metadata={"enum": list(DELIVERY_STATUSES)})
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    payload = fields.Raw()
    attempt_log = fields.List(fields.Nested(WebhookAttemptSchema))


class WebhookDeliveryListSchema(Schema):
    """Deliveries, oldest first."""

    deliveries = fields.List(fields.Nested(WebhookDeliverySchema))


class WebhookDeliveryQuerySchema(Schema):
    """Filters of `GET /webhooks/deliveries`."""

    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
    event = fields.String(validate=validate.OneOf(EVENT_TYPES))
    job_id = fields.UUID()


class WebhookSubscriptionSchema(Schema):
    """An endpoint that hears about every job's events of the chosen types."""

    id = fields.Integer(dump_only=True)
    url = fields.String(required=True, validate=[validate.Length(min=1, max=URL_MAX), _well_formed])
    events = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)), required=True,
                         validate=validate.Length(min=1, max=len(EVENT_TYPES)))
    description = fields.String(validate=validate.Length(max=255), allow_none=True)
    active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class WebhookSubscriptionListSchema(Schema):
    """Subscriptions, oldest first."""

    subscriptions = fields.List(fields.Nested(WebhookSubscriptionSchema))

"""Request and response shapes; they generate the OpenAPI document."""
import re

from marshmallow import Schema, ValidationError, fields, validate

from models.jobs import STATUSES
from models.orders import ORDER_STATUSES
from models.webhooks import DELIVERY_STATUSES, EVENT_TYPES
from observability import tracing
from placement.items import INT32_MAX
from web.quick_load import QuickLoad
from webhooks.urls import MAX_LENGTH as URL_MAX, URL_PATTERN, UnsafeUrl, check_destination, check_form, check_pattern

_ID = validate.Range(min=1, max=INT32_MAX)


class ItemSchema(Schema):
    """One line of an order."""

    product_id = fields.Integer(required=True, strict=True, validate=_ID)
    quantity = fields.Integer(required=True, strict=True, validate=_ID)


def url_field(check, description: str, **kwargs) -> fields.String:
    """A URL the service will POST signed events to. Its form is declared (`format: uri` and
    `URL_PATTERN`) and checked here; `check` adds what a schema cannot say (e.g. the address is public)."""

    def well_formed(url: str) -> None:
        try:
            check_pattern(url)
            check(url)
        except UnsafeUrl as exc:
            raise ValidationError(f"unusable URL: {exc}") from None

    return fields.String(validate=[validate.Length(min=1, max=URL_MAX), well_formed],
                         metadata={"format": "uri", "pattern": URL_PATTERN, "description": description}, **kwargs)


def callback_url_field(webhooks_enabled: bool, allow_private: bool) -> fields.String:
    """Where to POST a job's end: http(s), and public unless allowed otherwise."""

    def check(url: str) -> None:
        if not webhooks_enabled:
            raise ValidationError("webhooks are not enabled on this service (WEBHOOK_SECRET is not set)")
        check_destination(url, allow_private)

    return url_field(check, "Where to POST a signed event when the job ends and if its order is cancelled "
                            "(http or https; a public address unless the operator allowed private ones)")


def order_request_schema(max_items: int, max_quantity: int, webhooks_enabled: bool = False,
                         allow_private: bool = False) -> type[Schema]:
    """The body of a submission under these limits; without `items` the customer's cart is ordered.

    `max_quantity` bounds each line. Lines of the same product are merged (quantities added) and
    their total is not limited again: JSON Schema cannot state a sum per product, and the OpenAPI
    document must say everything that makes a body acceptable.
    """

    class LimitedItemSchema(ItemSchema):
        quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=max_quantity))

    class OrderRequestSchema(Schema):
        items = fields.List(fields.Nested(LimitedItemSchema), validate=validate.Length(min=1, max=max_items))
        callback_url = callback_url_field(webhooks_enabled, allow_private)

    return OrderRequestSchema


# An idempotency key: the Idempotency-Key header of a submission, or an import line's `idempotency_key`.
IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}")
IDEMPOTENCY_KEY_PATTERN = "^[\\x21-\\x7e]+$"


def _printable_key(key: str) -> None:
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationError(f"must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters")


def import_request_schema(order_schema: type[Schema], max_lines: int) -> type[Schema]:
    """The body of an import: up to `max_lines` orders, each a submission's body (`order_schema`) with
    its customer and, optionally, an idempotency key. Loaded the quick way when it is well formed
    (web.quick_load: an import's lines are most of the API's CPU for it)."""

    class ImportLineRequestSchema(order_schema):
        customer_id = fields.Integer(required=True, strict=True, validate=_ID)
        idempotency_key = fields.String(validate=_printable_key, metadata={
            "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX, "pattern": IDEMPOTENCY_KEY_PATTERN,
            "description": "Same key and same order: that order's job. Same key, another order: 409."})

    class ImportRequestSchema(QuickLoad):
        orders = fields.List(fields.Nested(ImportLineRequestSchema), required=True,
                             validate=validate.Length(min=1, max=max_lines))

    return ImportRequestSchema


class JobAcceptedSchema(Schema):
    """Answer to a submission: where to poll."""

    job_id = fields.UUID(attribute="id")
    status = fields.String()
    customer_id = fields.Integer()
    order_id = fields.Integer(allow_none=True, metadata={
        "description": "The order the job created: null until it completed (a repeated Idempotency-Key answers "
                       "with the job as it is)"})


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
    trace_id = fields.Function(lambda job: tracing.trace_id(job.traceparent), metadata={
        "type": "string", "nullable": True,
        "description": "The OpenTelemetry trace of the submission (null when tracing is off)"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ImportLineJobSchema(Schema):
    """The job answering one line of an import."""

    line = fields.Integer(metadata={"description": "The line's index in the request's `orders`, from 0"})
    job_id = fields.UUID()
    status = fields.String(metadata={"enum": list(STATUSES)})
    customer_id = fields.Integer()
    created = fields.Boolean(metadata={"description": "False: the line's idempotency key was seen with the same "
                                                      "order, and this is that order's job"})


class ImportAcceptedSchema(Schema):
    """Answer to an import: where to follow it, and each line's job."""

    import_id = fields.UUID()
    lines = fields.Integer()
    jobs = fields.List(fields.Nested(ImportLineJobSchema))


class ImportCountsSchema(Schema):
    """How many of the import's jobs are in each status."""

    queued, processing, retrying = fields.Integer(), fields.Integer(), fields.Integer()
    completed, rejected, failed, cancelled = fields.Integer(), fields.Integer(), fields.Integer(), fields.Integer()


class ImportLineSchema(Schema):
    """A line's job, as the import shows it."""

    line = fields.Integer(attribute="import_line")
    job_id = fields.UUID(attribute="id")
    customer_id = fields.Integer()
    status = fields.String(metadata={"enum": list(STATUSES)})
    order_id = fields.Integer(allow_none=True)
    error = fields.Nested(ErrorDetailSchema, allow_none=True)


class ImportSchema(Schema):
    """An import as clients poll it: counts by status, and a page of its lines' jobs."""

    import_id = fields.UUID(attribute="id")
    customer_id = fields.Integer(allow_none=True, metadata={
        "description": "The customer of every line; null when the lines are several customers'"})
    lines = fields.Integer(metadata={"description": "How many lines the request held"})
    created_at = fields.DateTime()
    done = fields.Boolean(metadata={"description": "Every job the import created has ended"})
    counts = fields.Nested(ImportCountsSchema)
    jobs = fields.List(fields.Nested(ImportLineSchema))


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
    url = url_field(check_form, "Where to POST the events (http or https; a public address unless the operator "
                                "allowed private ones)", required=True)
    events = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)), required=True,
                         validate=validate.Length(min=1, max=len(EVENT_TYPES)))
    description = fields.String(validate=validate.Length(max=255), allow_none=True)
    active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class WebhookSubscriptionListSchema(Schema):
    """Subscriptions, oldest first."""

    subscriptions = fields.List(fields.Nested(WebhookSubscriptionSchema))

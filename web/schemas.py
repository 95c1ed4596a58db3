"""Request and response shapes; they generate the OpenAPI document."""
from marshmallow import Schema, ValidationError, fields, validate, validates

from models.jobs import STATUSES
from models.orders import ORDER_STATUSES
from placement.items import INT32_MAX

_ID = validate.Range(min=1, max=INT32_MAX)


class ItemSchema(Schema):
    """One line of an order."""

    product_id = fields.Integer(required=True, strict=True, validate=_ID)
    quantity = fields.Integer(required=True, strict=True, validate=_ID)


def order_request_schema(max_items: int, max_quantity: int) -> type[Schema]:
    """The body of a submission under these limits; without `items` the customer's cart is ordered.

    Lines of the same product are merged (quantities added); the merged
    quantity must stay within `max_quantity` too.
    """

    class LimitedItemSchema(ItemSchema):
        quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=max_quantity))

    class OrderRequestSchema(Schema):
        items = fields.List(fields.Nested(LimitedItemSchema), validate=validate.Length(min=1, max=max_items))

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

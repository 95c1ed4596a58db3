"""Request and response shapes; they generate the OpenAPI document."""
from marshmallow import Schema, fields, validate

from models.jobs import STATUSES
from placement.items import INT32_MAX

_ID = validate.Range(min=1, max=INT32_MAX)


class ItemSchema(Schema):
    """One line of an order."""

    product_id = fields.Integer(required=True, strict=True, validate=_ID)
    quantity = fields.Integer(required=True, strict=True, validate=_ID)


class OrderRequestSchema(Schema):
    """Body of a submission; without `items` the customer's cart is ordered."""

    items = fields.List(fields.Nested(ItemSchema), validate=validate.Length(min=1))


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
    status = fields.String(validate=validate.Length(min=1, max=32))

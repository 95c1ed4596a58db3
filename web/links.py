"""OpenAPI links: which request an answer leads to (a job to its timeline, a job to its order, …).

They let readers and tools (Swagger UI, schemathesis' stateful phase) follow the real flow instead of
guessing it from URL templates, which mislead on the seed's path: `POST /orders/{id}` takes a customer id
and answers with a job, while `GET /orders/{id}` takes an order id (the seed's contract puts both on one
template; `POST /customers/{customer_id}/orders` is the submission's own path). A tool that guesses links
(schemathesis' dependency analysis) adds a guess only where no declared link leads to the same operation
with the same parameters, so a submission declares where it leads: its job, and its order once there is one.
Each operation a link names gets its `operationId` from `operation_id`.
"""
from __future__ import annotations

# Every operation a link points at, by operationId.
GET_JOB = "getJob"
GET_JOB_EVENTS = "getJobEvents"
GET_JOB_WEBHOOKS = "getJobWebhooks"
CANCEL_JOB = "cancelJob"
RETRY_JOB = "retryJob"
GET_ORDER = "getOrder"
GET_ORDER_EVENTS = "getOrderEvents"
CANCEL_ORDER = "cancelOrder"
SUBMIT_ORDER = "submitOrder"
SUBMIT_ORDER_SEED_PATH = "submitOrderSeedPath"
LIST_ORDERS = "listOrders"
SUBMIT_IMPORT = "submitImport"
GET_IMPORT = "getImport"
GET_SUBSCRIPTION = "getSubscription"
DELETE_SUBSCRIPTION = "deleteSubscription"

JOB_ID = "$response.body#/job_id"
ORDER_ID = "$response.body#/order_id"


def _link(operation_id: str, description: str, **parameters: str) -> dict:
    return {"operationId": operation_id, "description": description, "parameters": parameters}


def _job(job_id: str) -> dict:
    """From an answer naming a job: the job, its timeline, its webhooks, its cancellation."""
    return {
        "job": _link(GET_JOB, "Poll the job until it ends", job_id=job_id),
        "jobEvents": _link(GET_JOB_EVENTS, "The job's timeline", job_id=job_id),
        "jobWebhooks": _link(GET_JOB_WEBHOOKS, "The webhook deliveries the job owes", job_id=job_id),
        "cancelJob": _link(CANCEL_JOB, "Cancel the job before it starts", job_id=job_id),
    }


# A 202 with a job to poll (a submission, an order's cancellation, a replay).
ACCEPTED = _job(JOB_ID)


def _order(order_id: str) -> dict:
    """From an answer naming an order (null until the job completed): the order, its timeline, its cancellation."""
    return {
        "order": _link(GET_ORDER, "The order the job created", id=order_id),
        "orderEvents": _link(GET_ORDER_EVENTS, "What happened to that order", id=order_id),
        "cancelOrder": _link(CANCEL_ORDER, "Cancel that order", id=order_id),
    }


def submitted(customer_id: str) -> dict:
    """A submission's 202: its job, the order once the job created one (a repeated Idempotency-Key answers
    the job as it is), and the customer's orders (`customer_id`: the request's expression for the customer)."""
    return {**ACCEPTED, **_order(ORDER_ID),
            "customerOrders": _link(LIST_ORDERS, "The customer's orders", customer_id=customer_id)}

# A job as polled: its own resources, and the order it created once completed (order_id is null before).
JOB = {
    **_job(JOB_ID),
    "retryJob": _link(RETRY_JOB, "(admin) Replay the job once it failed", job_id=JOB_ID),
    **_order(ORDER_ID),
}

# An accepted import: the import to follow, and its first line's job.
IMPORT_ACCEPTED = {
    "import": _link(GET_IMPORT, "Follow the import until every line's job ended", import_id="$response.body#/import_id"),
    "firstJob": _link(GET_JOB, "The first line's job", job_id="$response.body#/jobs/0/job_id"),
}

# An order: its timeline and its cancellation.
ORDER = {
    "events": _link(GET_ORDER_EVENTS, "What happened to the order", id="$response.body#/id"),
    "cancel": _link(CANCEL_ORDER, "Cancel the order", id="$response.body#/id"),
}

# A subscription: ending it; and, once created, reading it.
UNSUBSCRIBE = {
    "unsubscribe": _link(DELETE_SUBSCRIPTION, "Stop sending to it", subscription_id="$response.body#/id"),
}
SUBSCRIPTION = {
    "subscription": _link(GET_SUBSCRIPTION, "The subscription", subscription_id="$response.body#/id"),
    **UNSUBSCRIBE,
}


def documented(operation_id: str, status: int | None = None, links: dict | None = None) -> dict:
    """`@blp.doc(**documented(...))`: the operation's id, and the links of its `status` answer."""
    doc = {"operationId": operation_id}
    if links:
        doc["responses"] = {status: {"links": links}}
    return doc

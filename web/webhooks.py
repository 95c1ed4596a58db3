"""`/webhooks/...` (admin): subscriptions to every job's events, and the record of every delivery.

A customer sees the deliveries of its own jobs' callbacks at `/jobs/{job_id}/webhooks`;
everything here needs the orders:admin scope.
"""
from __future__ import annotations

import uuid

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import select

from models.webhooks import WebhookDelivery, WebhookSubscription
from web import auth, links
from web.extensions import db
from web.paging import PagedBlueprint, page_of
from web.schemas import (
    WebhookDeliveryListSchema, WebhookDeliveryQuerySchema, WebhookDeliverySchema, WebhookSubscriptionListSchema,
    WebhookSubscriptionSchema,
)
from webhooks.urls import UnsafeUrl, check_destination

blp = PagedBlueprint("webhooks", __name__, url_prefix="/webhooks",
                     description="(admin) Webhook subscriptions and the record of every delivery")


@blp.before_request
def _admins_only():
    if request.method != "OPTIONS" and not auth.current().admin:
        abort(403, message="Webhook administration needs the orders:admin scope")


@blp.route("/subscriptions")
class Subscriptions(MethodView):
    @blp.response(200, WebhookSubscriptionListSchema)
    @blp.paginate()
    @blp.doc(**links.documented("listSubscriptions"))
    def get(self, pagination_parameters):
        """Active subscriptions, oldest first."""
        query = select(WebhookSubscription).where(WebhookSubscription.active)
        return {"subscriptions": page_of(query, WebhookSubscription.id, pagination_parameters)}

    @blp.arguments(WebhookSubscriptionSchema())
    @blp.response(201, WebhookSubscriptionSchema)
    @blp.alt_response(422, description="Malformed or refused URL (not public), unknown event type, "
                                        "or webhooks not enabled")
    @blp.doc(**links.documented("createSubscription", 201, links.SUBSCRIPTION))
    def post(self, body):
        """Send every job's events of the given types to `url`, signed like callbacks."""
        settings = current_app.extensions["settings"]
        if settings.webhook_secret is None:
            abort(422, message="webhooks are not enabled on this service (WEBHOOK_SECRET is not set)")
        try:
            check_destination(body["url"], settings.webhook_allow_private)
        except UnsafeUrl as exc:
            abort(422, message=f"unusable URL: {exc}")
        subscription = WebhookSubscription(url=body["url"], events=sorted(set(body["events"])),
                                           description=body.get("description"), active=True)
        db.session.add(subscription)
        db.session.commit()
        return subscription


@blp.route("/subscriptions/<id:subscription_id>")
class SubscriptionById(MethodView):
    @blp.response(200, WebhookSubscriptionSchema)
    @blp.doc(**links.documented(links.GET_SUBSCRIPTION, 200, links.UNSUBSCRIBE))
    def get(self, subscription_id):
        """One active subscription."""
        return _active_subscription(subscription_id)

    @blp.response(204)
    @blp.doc(**links.documented(links.DELETE_SUBSCRIPTION))
    def delete(self, subscription_id):
        """Stop sending to it; deliveries already owed are still sent and stay on record."""
        _active_subscription(subscription_id).active = False
        db.session.commit()


@blp.route("/deliveries")
class Deliveries(MethodView):
    @blp.arguments(WebhookDeliveryQuerySchema(), location="query")
    @blp.response(200, WebhookDeliveryListSchema)
    @blp.paginate()
    @blp.doc(**links.documented("listDeliveries"))
    def get(self, filters, pagination_parameters):
        """Every delivery, oldest first, optionally by status, event type or job."""
        query = select(WebhookDelivery)
        for name, value in filters.items():
            query = query.where(getattr(WebhookDelivery, name) == value)
        return {"deliveries": page_of(query, WebhookDelivery.created_at, pagination_parameters)}


@blp.route("/deliveries/<delivery_id>")
class DeliveryById(MethodView):
    @blp.response(200, WebhookDeliverySchema)
    @blp.doc(**links.documented("getDelivery"))
    def get(self, delivery_id):
        """One delivery with every attempt; 404 for an unknown or malformed id."""
        try:
            key = uuid.UUID(delivery_id)
        except ValueError:
            abort(404, message=f"Delivery {delivery_id} not found")
        delivery = db.session.get(WebhookDelivery, key)
        if delivery is None:
            abort(404, message=f"Delivery {delivery_id} not found")
        return delivery


def _active_subscription(subscription_id: int) -> WebhookSubscription:
    subscription = db.session.get(WebhookSubscription, subscription_id)
    if subscription is None or not subscription.active:
        abort(404, message=f"Subscription {subscription_id} not found")
    return subscription

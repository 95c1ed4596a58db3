"""The API through `create_app(...)` and Flask's test client, against a real PostgreSQL (a database of
the module's own, migrated once) and a Redis of the tests' own (the rate limit's), without a worker:
the HTTP contract in milliseconds. Jobs and orders are put in the state a test needs straight in
PostgreSQL, as the worker writes them."""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import text

from devstack.brokers import RedisBroker
from devstack.stack import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET
from devstack.tokens import token
from settings import Settings
from web import create_app

LOGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs" / "web"


@pytest.fixture(scope="session")
def redis_url():
    """One for every module here: starting one takes a third of a second."""
    broker = RedisBroker(LOGS)
    yield broker.url
    broker.stop()


@pytest.fixture()
def make_app(database_url, redis_url):
    """`make_app(VARIABLE="value", ...)`: an app on the module's database with these settings (auth off)."""
    apps = []

    def make(**env):
        settings = Settings.from_env({"DATABASE_URL": database_url, "CELERY_BROKER_URL": redis_url,
                                      "AUTH_DISABLED": "true", **env})
        apps.append(create_app(settings))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["job_waits"].close()
        app.extensions["database"].dispose()


@pytest.fixture()
def client(make_app):
    return make_app().test_client()


# As the live stacks run the API: tokens checked, webhooks signed, callbacks to loopback allowed.
AS_DEPLOYED = {"AUTH_DISABLED": "false", "JWT_SECRET": TEST_JWT_SECRET, "WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
               "WEBHOOK_ALLOW_PRIVATE": "true"}


class Api:
    """A caller of an app through the test client, with a bearer token (None: none at all)."""

    def __init__(self, app, bearer: str | None = None):
        self.app = app
        self.http = app.test_client()
        if bearer is not None:
            self.http.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {bearer}"

    def as_(self, bearer: str | None) -> "Api":
        """The same app seen by another caller."""
        return Api(self.app, bearer)

    def get(self, path: str, **kwargs):
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.http.post(path, **kwargs)

    def submit(self, customer_id: int, items=None, key: str | None = None):
        headers = {"Idempotency-Key": key} if key else {}
        return self.post(f"/orders/{customer_id}", json={"items": items} if items is not None else None,
                         headers=headers)


@pytest.fixture()
def make_api(make_app, engine):
    """`make_api(VARIABLE="value", ...)`: an admin's `Api` on an app set up as deployed, with these
    settings over it; every table empty."""
    return lambda **env: Api(make_app(**{**AS_DEPLOYED, **env}), token())


@pytest.fixture()
def api(make_api):
    return make_api()


class Jobs:
    """Jobs in a given state, written as the service writes them."""

    def __init__(self, engine):
        self.engine = engine

    def park(self, status: str = "queued", due_in: float = 3600, customer_id: int = 1, error: dict | None = None) -> str:
        """A cart job of `customer_id` in `status` (tried once unless queued), due to run in `due_in`
        seconds (a queued one far ahead: no worker takes it)."""
        job_id = str(uuid.uuid4())
        with self.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO jobs (id, customer_id, status, source, attempts, cart_status, error, next_run_at)"
                " VALUES (:id, :customer_id, :status, 'cart', :attempts, 'not_needed', CAST(:error AS jsonb),"
                " now() + make_interval(secs => :due_in))"),
                {"id": job_id, "customer_id": customer_id, "status": status, "attempts": int(status != "queued"),
                 "error": json.dumps(error) if error else None, "due_in": due_in})
        return job_id

    def owe(self, job_id: str, event: str, url: str, subscription_id: int | None = None) -> str:
        """A webhook delivery the job owes (to its callback, or to a subscription), not yet sent."""
        delivery_id = str(uuid.uuid4())
        with self.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO webhook_deliveries (id, job_id, subscription_id, event, url, payload)"
                " VALUES (:id, :job_id, :subscription_id, :event, :url, CAST(:payload AS jsonb))"),
                {"id": delivery_id, "job_id": job_id, "subscription_id": subscription_id, "event": event, "url": url,
                 "payload": json.dumps({"id": delivery_id, "type": event, "data": {"job": {"job_id": job_id}}})})
        return delivery_id

    def set_status(self, job_id: str, status: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("UPDATE jobs SET status = :status, updated_at = now() WHERE id = :id"),
                               {"id": job_id, "status": status})


@pytest.fixture()
def jobs(engine):
    return Jobs(engine)


class Placed(NamedTuple):
    job_id: str
    order_id: int


class Orders:
    """Orders as an execution leaves them: the job completed, its timeline, the order and its items."""

    def __init__(self, engine):
        self.engine = engine

    def place(self, customer_id: int, items=({"product_id": 1, "quantity": 1},)) -> Placed:
        job_id, items = str(uuid.uuid4()), json.dumps(list(items))
        with self.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO jobs (id, customer_id, status, step, source, requested_items, items, attempts,"
                " cart_status, next_run_at) VALUES (:id, :customer_id, 'completed', 'done', 'body',"
                " CAST(:items AS jsonb), CAST(:items AS jsonb), 1, 'not_needed', now())"),
                {"id": job_id, "customer_id": customer_id, "items": items})
            order_id = connection.scalar(text(
                "INSERT INTO orders (customer_id, status, job_id) VALUES (:customer_id, 'Ordered', :job_id)"
                " RETURNING id"), {"customer_id": customer_id, "job_id": job_id})
            connection.execute(text(
                "INSERT INTO order_items (order_id, product_id, quantity) SELECT :order_id, product_id, quantity"
                " FROM jsonb_to_recordset(CAST(:items AS jsonb)) AS item(product_id int, quantity int)"),
                {"order_id": order_id, "items": items})
            connection.execute(text(
                "INSERT INTO job_events (job_id, event, status, attempt, detail)"
                " VALUES (:id, 'order_saved', 'completed', 1, CAST(:saved AS jsonb))"),
                {"id": job_id, "saved": json.dumps({"order_id": order_id})})
        return Placed(job_id, order_id)


@pytest.fixture()
def orders(engine):
    return Orders(engine)

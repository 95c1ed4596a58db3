"""PostgreSQL out of reach: every endpoint that needs it answers 503 with Retry-After (never a 500),
and answers again once it is back, with no step by hand; /metrics answers, with orders_database_up 0. Through create_app and Flask's test
client, against a PostgreSQL of the test's own that it stops and starts."""
import uuid

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from devstack import stack as procs
from devstack.postgres import PrivatePostgres
from settings import Settings
from tests.prometheus import samples, value
from web import create_app, errors, ready

JOB = uuid.uuid4()
ENDPOINTS = [
    ("POST", "/orders/7", {"items": [{"product_id": 3, "quantity": 2}]}),
    ("GET", "/orders", None), ("GET", "/orders/1", None), ("GET", "/orders/1/events", None),
    ("POST", "/orders/1/cancel", None), ("GET", "/customers/7/orders", None),
    ("GET", f"/jobs/{JOB}", None), ("GET", f"/jobs/{JOB}/events", None), ("GET", f"/jobs/{JOB}/webhooks", None),
    ("POST", f"/jobs/{JOB}/cancel", None), ("POST", f"/jobs/{JOB}/retry", None),
    ("GET", "/webhooks/subscriptions", None), ("GET", "/webhooks/deliveries", None),
    ("GET", f"/webhooks/deliveries/{JOB}", None),
]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = PrivatePostgres(tmp_path_factory.mktemp("postgres-logs"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(postgres, redis_url):
    # The rate limiter's Redis does not answer either: requests pass uncounted, as in production.
    settings = Settings.from_env({"DATABASE_URL": postgres.url, "AUTH_DISABLED": "true", "CELERY_BROKER_URL": redis_url,
                                  "RATE_LIMIT_STORAGE_URI": f"redis://127.0.0.1:{procs.free_port()}/0"})
    app = create_app(settings)
    ready(app)
    yield app.test_client()
    app.extensions["database"].dispose()


def _ask(client, method, path, body):
    return client.open(path, method=method, json=body)


def test_every_endpoint_that_needs_the_database_answers_503_while_it_is_down(client, postgres):
    for method, path, body in ENDPOINTS:  # pooled connections first, which the restart then breaks
        assert _ask(client, method, path, body).status_code < 500, path

    with postgres.outage():
        answers = {path: _ask(client, method, path, body) for method, path, body in ENDPOINTS}

    wrong = {path: (a.status_code, a.headers.get("Retry-After"), a.get_json()) for path, a in answers.items()
             if a.status_code != 503 or a.headers.get("Retry-After") != "5"
             or "database is unavailable" not in a.get_json()["message"]}
    assert wrong == {}
    assert answers["/orders"].get_json()["code"] == 503
    assert answers["/orders"].get_json()["status"] == "Service Unavailable"


def test_metrics_still_answer_while_it_is_down_and_say_so(client, postgres):
    """A scrape that failed would hide every counter just when the operator needs them."""
    with postgres.outage():
        assert client.get("/orders").status_code == 503
        down = client.get("/metrics")
    up = client.get("/metrics")

    assert down.status_code == 200 and value(samples(down.text), "orders_database_up") == 0
    assert "orders_jobs_unfinished" not in down.text
    assert value(samples(down.text), "http_requests_total", endpoint="/orders", method="GET", status="503") > 0
    assert value(samples(up.text), "orders_database_up") == 1


def test_once_it_is_back_the_same_app_answers_again(client, postgres):
    with postgres.outage():
        assert client.get("/orders").status_code == 503

    assert client.get("/orders").status_code == 200
    submitted = client.post("/orders/7", json={"items": [{"product_id": 3, "quantity": 2}]})
    assert submitted.status_code == 202
    assert client.get(f"/jobs/{submitted.get_json()['job_id']}").status_code == 200


def test_a_statement_that_fails_is_still_a_500(postgres):
    """Only an outage is a 503: a query the server cancels (its own fault, not an outage) is not."""
    engine = create_engine(postgres.url)
    app = Flask(__name__)
    errors.init_app(app)

    @app.route("/slow")
    def slow():
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL statement_timeout = 1"))
            connection.execute(text("SELECT pg_sleep(1)"))

    try:
        response = app.test_client().get("/slow")
    finally:
        engine.dispose()
    assert response.status_code == 500

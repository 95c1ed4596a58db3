"""The API through `create_app(...)` and Flask's test client, against a real PostgreSQL (a database of
the module's own, migrated by the app) and a Redis of its own (the rate limit's), without a worker:
the HTTP contract in milliseconds. Jobs are put in the state a test needs straight in PostgreSQL."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from devstack.brokers import RedisBroker
from models import Base
from settings import Settings
from web import create_app

LOGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs" / "web"


@pytest.fixture(scope="module")
def redis_url():
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


@pytest.fixture()
def engine(database_url, make_app):
    """The module's database, migrated, every table emptied before the test."""
    make_app()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(table.name for table in Base.metadata.sorted_tables)}"))
    yield engine
    engine.dispose()


class Jobs:
    """Jobs in a given state, written as the service writes them."""

    def __init__(self, engine):
        self.engine = engine

    def park(self, status: str = "queued", due_in: float = 3600) -> str:
        """A job in `status`, due to run in `due_in` seconds (a queued one far ahead: no worker takes it)."""
        job_id = str(uuid.uuid4())
        with self.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO jobs (id, customer_id, status, source, attempts, cart_status, next_run_at)"
                " VALUES (:id, 1, :status, 'cart', 0, 'not_needed', now() + make_interval(secs => :due_in))"),
                {"id": job_id, "status": status, "due_in": due_in})
        return job_id

    def set_status(self, job_id: str, status: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("UPDATE jobs SET status = :status, updated_at = now() WHERE id = :id"),
                               {"id": job_id, "status": status})


@pytest.fixture()
def jobs(engine):
    return Jobs(engine)

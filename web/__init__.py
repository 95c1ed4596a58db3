"""The HTTP API: `gunicorn "web:create_app()"`.

It only reads jobs and orders and creates jobs; it never calls a peer and never
places an order itself, so its answer time does not depend on them.

Building the app touches nothing outside the process: what serves it (gunicorn's
on_starting) or a command that uses the database calls `ready` first, so
commands that need no database (`flask mint-token`) never connect to one.
"""
from __future__ import annotations

from flask import Flask

import migrations
import tasks
from models.db import Database
from observability import logs, tracing
from settings import Settings, get_settings
from web import (
    auth, commands, converters, customers, docs, errors, health, imports, jobs, limits, metrics, observe, orders,
    webhooks,
)
from web.backlog import Backlog
from web.converters import IdConverter, id_schema
from web.submissions import Submissions
from web.extensions import api, db
from web.waits import JobWaits

BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API for `settings` (default: the process's, read from the environment)."""
    settings = settings or get_settings()
    logs.configure(settings.log_level, settings.log_format)
    tasks.init_app(settings)  # wake-ups go to this broker, the flag to this Redis
    tracing.setup(settings, "orders-api")  # before the database's engine: its SQL is traced
    app = Flask(__name__)
    tracing.instrument_app(app)
    app.config.update(
        API_TITLE="Order service",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=docs.ASSETS_URL,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_SPEC_OPTIONS={"security": [{"bearerAuth": []}],
                          "components": {"securitySchemes": {"bearerAuth": BEARER}}},
    )
    app.extensions["settings"] = settings
    app.extensions["job_waits"] = JobWaits(settings.database_url, settings.max_waiting_requests)
    # Validation errors key list items by index next to "_schema": mixed keys cannot be sorted.
    app.json.sort_keys = False
    converters.init_app(app)
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    app.extensions["backlog"] = backlog = Backlog(database)
    db.init_app(app, database)
    api.init_app(app)
    api.register_converter(IdConverter, id_schema)
    submissions = Submissions(settings, backlog)
    api.register_blueprint(orders.make_blueprint(submissions))
    api.register_blueprint(customers.make_blueprint(submissions))
    api.register_blueprint(imports.make_blueprint(settings, submissions))
    for module in (jobs, webhooks, health):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.blp)
    app.register_blueprint(metrics.blp)
    observe.init_app(app)
    auth.init_app(app, settings)
    limits.init_app(app, settings, exempt_blueprints=(health.blp, docs.blp, metrics.blp))
    errors.init_app(app, api)
    commands.init_app(app)
    return app


def ready(app: Flask) -> None:
    """Before the app serves: its database answers (else one line naming DATABASE_URL) and, with
    AUTO_MIGRATE, its schema is brought up to date."""
    database = app.extensions["database"]
    database.require_reachable()
    if app.extensions["settings"].auto_migrate:
        migrations.upgrade(database.engine)

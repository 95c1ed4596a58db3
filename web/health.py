"""Liveness and readiness, for load balancers and docker-compose health checks."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from tasks import app as celery_app
from web.extensions import db

blp = Blueprint("health", __name__, description="Health checks (no token needed)")


@blp.route("/healthz")
class Live(MethodView):
    @blp.doc(security=[])
    @blp.response(200)
    def get(self):
        """The process answers."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.doc(security=[])
    @blp.response(200)
    @blp.alt_response(503, description="PostgreSQL or the broker does not answer")
    def get(self):
        """PostgreSQL and the broker both answer; 503 naming the one that does not."""
        checks = {"database": _database_ok(), "broker": _broker_ok()}
        body = {"status": "ok" if all(checks.values()) else "unavailable",
                "checks": {name: "ok" if ok else "failed" for name, ok in checks.items()}}
        return body, 200 if all(checks.values()) else 503


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=0, timeout=1)
        return True
    except Exception:
        return False

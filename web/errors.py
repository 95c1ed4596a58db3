"""Every error is JSON in flask-smorest's shape; an unexpected one never shows a traceback.

PostgreSQL out of reach (restarting, refusing connections, gone mid-request) is
an outage, not a bug: `503` with Retry-After, so clients and load balancers
wait and try again.
"""
from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import MethodNotAllowed

from models.db import first_line

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5  # a restart takes seconds; pooled connections reconnect on their next use
# SQLSTATEs of a server that is going away or not yet back: admin/crash shutdown, cannot connect now.
_SERVER_GOING_OR_COMING = frozenset({"57P01", "57P02", "57P03"})


def database_unavailable(exc: DBAPIError) -> bool:
    """A lost or refused connection, or a server shutting down or starting up; not a statement that failed.

    The driver's own connection failures carry no SQLSTATE; the server's say class 08
    (connection exception) or one of the shutdown/startup codes.
    """
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    code = getattr(exc.orig, "pgcode", None)
    return code is None or code.startswith("08") or code in _SERVER_GOING_OR_COMING


def init_app(app: Flask, api=None) -> None:
    """Catch everything the Api's HTTP error handler does not, as a JSON 500 (503 for a database
    outage); keep Allow on a 405."""

    if api is not None:
        @app.errorhandler(MethodNotAllowed)
        def _method_not_allowed(exc):
            body, status, headers = api.handle_http_exception(exc)
            return body, status, {**headers, "Allow": ", ".join(sorted(exc.valid_methods or ()))}

    @app.errorhandler(DBAPIError)
    def _database_error(exc):
        if not database_unavailable(exc):
            return _unexpected(exc)
        log.warning("database unavailable: %s", first_line(exc))
        return ({"code": 503, "status": "Service Unavailable",
                 "message": "The database is unavailable; try again shortly (a submission repeated with the "
                            "same Idempotency-Key is never doubled)"},
                503, {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})

    @app.errorhandler(Exception)
    def _unexpected(exc):
        log.exception("unhandled error")
        return {"code": 500, "status": "Internal Server Error",
                "message": "Internal error; it has been logged"}, 500

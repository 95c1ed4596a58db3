"""Every error is JSON in flask-smorest's shape; an unexpected one never shows a traceback."""
from __future__ import annotations

import logging

from flask import Flask
from werkzeug.exceptions import MethodNotAllowed

log = logging.getLogger(__name__)


def init_app(app: Flask, api=None) -> None:
    """Catch everything the Api's HTTP error handler does not, as a JSON 500; keep Allow on a 405."""

    if api is not None:
        @app.errorhandler(MethodNotAllowed)
        def _method_not_allowed(exc):
            body, status, headers = api.handle_http_exception(exc)
            return body, status, {**headers, "Allow": ", ".join(sorted(exc.valid_methods or ()))}

    @app.errorhandler(Exception)
    def _unexpected(exc):
        log.exception("unhandled error")
        return {"code": 500, "status": "Internal Server Error",
                "message": "Internal error; it has been logged"}, 500

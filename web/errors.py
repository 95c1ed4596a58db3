"""Every error is JSON in flask-smorest's shape; an unexpected one never shows a traceback."""
from __future__ import annotations

import logging

from flask import Flask
from werkzeug.exceptions import InternalServerError

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """HTTP errors are the Api's (JSON already); this catches everything else as a JSON 500."""

    @app.errorhandler(Exception)
    def _unexpected(exc):
        log.exception("unhandled error")
        return {"code": 500, "status": InternalServerError.name,
                "message": "Internal error; it has been logged"}, 500

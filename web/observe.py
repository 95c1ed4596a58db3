"""Per-request bookkeeping: a request id, one log line, and the HTTP metrics.

The id comes from X-Request-ID when the caller sends a sane one, else it is
made up; either way it is returned in X-Request-ID and stamped on every log
line written while serving the request. A request that answers with a job
names it (`name_job`), so its one line says `req=` and `job=` together.
"""
from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, request

from observability import logs, metrics

log = logging.getLogger("web.requests")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def init_app(app: Flask) -> None:
    """Install the before/after hooks on the app."""

    @app.before_request
    def _begin():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        g.request_token = logs.request_id.set(g.request_id)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.http_requests.labels(endpoint, request.method, str(response.status_code)).inc()
        metrics.http_latency.labels(endpoint, request.method).observe(elapsed)
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        log.info("%s %s %s %.1fms", request.method, request.full_path.rstrip("?"), response.status_code,
                 elapsed * 1000)
        return response

    @app.teardown_request
    def _forget(_exc=None):
        # gunicorn's threads serve request after request: what a request stamped must not outlive it.
        for name, variable in (("job_token", logs.job_id), ("request_token", logs.request_id)):
            token = g.pop(name, None)
            if token is not None:
                variable.reset(token)


def name_job(job_id) -> None:
    """Stamp `job=<id>` on the lines still to be written for this request, its request line included."""
    g.job_token = logs.job_id.set(str(job_id))

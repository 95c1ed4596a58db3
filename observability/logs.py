"""One log line per event, readable text or JSON (LOG_FORMAT=json), with correlation ids.

A request id (taken from X-Request-ID or made up) and a job id ride along in
context variables, so every line written while serving a request or running a
job carries them: one order can be followed from the API through every worker.
With tracing on, a line also names the trace in progress (a job's own while its
outcome is logged), so a log line leads to its trace.
"""
from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("job_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)-5s %(name)s [req=%(request_id)s job=%(job_id)s trace=%(trace_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(job_id)s %(trace_id)s %(process)d"


class _Correlation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", None) or request_id.get() or "-"
        record.job_id = getattr(record, "job_id", None) or job_id.get() or "-"
        # The trace of the span in progress (with tracing off there is none: "-").
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else "-"
        return True


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send every logger's records to stderr in `fmt` (Settings.log_format: text or json); safe to
    call more than once."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Correlation())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "asctime": "time"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

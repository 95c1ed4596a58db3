"""OpenTelemetry traces, one per order: the submission's request, the wake-up, the execution that
placed the job, its peer calls and its SQL (README, 'Tracing').

Off unless OTEL_TRACES_EXPORTER=otlp, and then free: no tracer provider, no instrumentation, no
exporter (the API's no-op tracer answers every call). On, spans go over OTLP/HTTP to
OTEL_EXPORTER_OTLP_ENDPOINT, sampled as OTEL_TRACES_SAMPLER says (the SDK reads both).

A wake-up belongs to no submission and an execution places a batch of jobs, so the submission's
context travels on the job row (`jobs.traceparent`), not only in the task's headers: the
execution's span links to each job it claimed, and each job gets a span in its own trace, a child
of its submission linked back to the execution, that lasts while this execution holds it.
"""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable

from opentelemetry import trace

_enabled = False


def setup(settings, default_service: str) -> bool:
    """Install the provider and the instrumentations once per process tree, when configured.

    Called before any engine or HTTP pool is made (the instrumentations hook their connections).
    The exporter and its batch thread are made per process on first use (`exporting.PerProcess`).
    """
    global _enabled
    if _enabled or not settings.tracing:
        return _enabled
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    from observability.exporting import tracer_provider

    trace.set_tracer_provider(tracer_provider(settings.service_name or default_service))
    CeleryInstrumentor().instrument()
    AioHttpClientInstrumentor().instrument()  # peer calls (peers.http)
    URLLib3Instrumentor().instrument()  # webhook deliveries (webhooks.sending)
    # SQL spans from psycopg2's cursors, on every pooled connection SQLAlchemy opens (the
    # -sqlalchemy instrumentation declares SQLAlchemy < 2.1 and imports its asyncio part,
    # which needs greenlet; wrapping psycopg2.connect would hand SQLAlchemy a proxy that
    # psycopg2.extras.register_* refuse).
    event.listen(Pool, "connect", lambda connection, _record: Psycopg2Instrumentor.instrument_connection(connection))
    _enabled = True
    return True


def instrument_app(app) -> None:
    """Server spans for the Flask app's requests (continuing an incoming traceparent)."""
    if _enabled:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument_app(app)


def untraced():
    """A context whose peer calls and SQL are not traced: the sweeper's look every few seconds
    belongs to no order, and would bury the orders' traces."""
    if not _enabled:
        return contextlib.nullcontext()
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


def traceparent() -> str | None:
    """The W3C traceparent of the current span (stored with a submission's job), None when off."""
    if not _enabled:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def trace_id(traceparent_value: str | None) -> str | None:
    """The trace id (32 hex digits) in a traceparent, e.g. for support to open the job's trace."""
    parts = (traceparent_value or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def _span_context(traceparent_value: str | None):
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent_value or ""})
    span_context = trace.get_current_span(context).get_span_context()
    return context if span_context.is_valid else None


class JobSpans:
    """One execution's jobs: a link from the execution's span to each job's submission, and a span
    per job in the job's own trace from its claim to its outcome in this execution."""

    def __init__(self):
        self._spans: dict[uuid.UUID, trace.Span] = {}

    def claimed(self, jobs: Iterable) -> None:
        """Link the current (execution's) span to each claimed job and start the job's span."""
        if not _enabled:
            return
        execution = trace.get_current_span()
        tracer = trace.get_tracer(__name__)
        for job in jobs:
            context = _span_context(job.traceparent)
            if context is None or job.id in self._spans:
                continue
            submission = trace.get_current_span(context).get_span_context()
            execution.add_link(submission, {"job.id": str(job.id)})
            self._spans[job.id] = tracer.start_span(
                "orders.place job", context=context, kind=trace.SpanKind.CONSUMER,
                links=[trace.Link(execution.get_span_context())],
                attributes={"job.id": str(job.id), "job.attempt": job.attempts})

    def finish(self, job_id: uuid.UUID, status: str, code: str | None):
        """A context in which the job's span is current (its log lines carry its trace id); the span
        ends with it, recording the job's status after this execution."""
        span = self._spans.pop(job_id, None)
        if span is None:
            return contextlib.nullcontext()
        span.set_attribute("job.status", status)
        if code:
            span.set_attribute("job.code", code)
        return trace.use_span(span, end_on_exit=True)

    def close(self) -> None:
        """End the spans of jobs that got no outcome (the execution stopped)."""
        for span in self._spans.values():
            span.end()
        self._spans.clear()

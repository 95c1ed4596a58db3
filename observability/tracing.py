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

from process_local import ProcessLocal

_enabled = False


def setup(settings, default_service: str) -> bool:
    """Install the provider and the instrumentations once per process tree, when configured.

    Called before any engine or HTTP pool is made (the instrumentations hook their creation). The
    exporter and its batch thread are made per process on first use (`_PerProcess`): gunicorn
    preloads the app in its master and forks, and a thread does not survive a fork.
    """
    global _enabled
    if _enabled or not settings.tracing:
        return _enabled
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    resource = Resource.create({SERVICE_NAME: settings.service_name or default_service})
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER / _ARG
    provider.add_span_processor(_PerProcess())
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument()
    URLLib3Instrumentor().instrument()
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


def _batch_processor():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter())


class _PerProcess:
    """A span processor that hands each span to this process's own batch processor and exporter."""

    def __init__(self):
        self._local = ProcessLocal(_batch_processor)

    def on_start(self, span, parent_context=None) -> None:
        return None  # the batch processor does nothing at start

    def _on_ending(self, span) -> None:
        return None

    def on_end(self, span) -> None:
        self._local.get().on_end(span)

    def shutdown(self) -> None:
        processor = self._local.peek()
        if processor is not None:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        processor = self._local.peek()
        return processor.force_flush(timeout_millis) if processor is not None else True


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

"""What tracing takes from the OpenTelemetry SDK, imported only when tracing is on
(observability.tracing): the tracer provider, and the per-process exporter behind it."""
from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from process_local import ProcessLocal


def tracer_provider(service_name: str) -> TracerProvider:
    """The provider of this service's spans: sampled as OTEL_TRACES_SAMPLER / _ARG say (the SDK
    reads them), exported over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(PerProcess())
    return provider


class PerProcess(SpanProcessor):
    """Hands each ended span to this process's own batch processor and exporter, made on first use.

    gunicorn builds the app (and so the provider) in its master and forks its workers; a batch
    processor's thread and its exporter's connections do not survive a fork.
    """

    def __init__(self):
        self._local = ProcessLocal(lambda: BatchSpanProcessor(OTLPSpanExporter()))

    def on_end(self, span: ReadableSpan) -> None:
        self._local.get().on_end(span)

    def shutdown(self) -> None:
        processor = self._local.peek()
        if processor is not None:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        processor = self._local.peek()
        return processor.force_flush(timeout_millis) if processor is not None else True

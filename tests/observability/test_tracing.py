"""Tracing is off unless OTEL_TRACES_EXPORTER=otlp, and off it installs nothing."""
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

from observability import tracing
from settings import ConfigError, Settings

BASE = {"DATABASE_URL": "postgresql://db/x", "CELERY_BROKER_URL": "redis://r/0"}


@pytest.mark.parametrize("value, on", [(None, False), ("", False), ("none", False), ("NONE", False), ("otlp", True)])
def test_traces_are_exported_only_when_otel_traces_exporter_says_otlp(value, on):
    env = BASE if value is None else {**BASE, "OTEL_TRACES_EXPORTER": value}
    assert Settings.from_env(env).tracing is on


def test_an_exporter_the_service_cannot_use_stops_it_naming_the_variable():
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER='jaeger'"):
        Settings.from_env({**BASE, "OTEL_TRACES_EXPORTER": "jaeger"})


def test_off_no_provider_no_instrumentation_and_no_trace_on_a_job():
    assert tracing.setup(Settings.from_env(BASE), "orders-api") is False

    assert not hasattr(trace.get_tracer_provider(), "add_span_processor")  # the API's no-op proxy
    assert not CeleryInstrumentor().is_instrumented_by_opentelemetry
    assert not URLLib3Instrumentor().is_instrumented_by_opentelemetry
    assert tracing.traceparent() is None
    spans = tracing.JobSpans()
    spans.claimed([])
    with spans.finish("job", "completed", None):
        assert not trace.get_current_span().get_span_context().is_valid


@pytest.mark.parametrize("value, trace_id", [
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "0af7651916cd43dd8448eb211c80319c"),
    (None, None), ("", None), ("garbage", None),
])
def test_a_jobs_trace_id_is_read_from_its_traceparent(value, trace_id):
    assert tracing.trace_id(value) == trace_id

"""One trace per order: a live stack exporting to a real OTLP/HTTP receiver on loopback shows the
submission, the wake-up, the execution that placed it (linked to the submission), its catalog and
cart calls and its SQL; and with tracing off nothing of it is there."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from devstack.stack import Stack
from devstack.tokens import token
from tests.live.conftest import LOGS, Api


class OtlpReceiver:
    """An OTLP/HTTP trace receiver (POST /v1/traces, protobuf) keeping every span it is sent."""

    def __init__(self):
        self.spans: list[tuple[str, Span]] = []  # (service.name, span)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                request = ExportTraceServiceRequest()
                request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    for resource_spans in request.resource_spans:
                        service = _attributes(resource_spans.resource.attributes)["service.name"]
                        receiver.spans += [(service, span) for scope in resource_spans.scope_spans
                                           for span in scope.spans]
                body = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, found, timeout: float = 30):
        """`found(spans)` once it is not empty (spans arrive in batches, per process)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                result = found(list(self.spans))
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.1)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _value(value):
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


def _attributes(attributes) -> dict:
    return {attribute.key: _value(attribute.value) for attribute in attributes}


def _attr(span: Span, *names):
    """The first of `names` the span has (the instrumentations use old or new semantic conventions)."""
    attributes = _attributes(span.attributes)
    return next((attributes[name] for name in names if name in attributes), None)


@pytest.fixture
def traced(own_broker_kind):
    """A stack of its own exporting its traces to a receiver on loopback."""
    receiver = OtlpReceiver()
    settings = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_BSP_SCHEDULE_DELAY": "100"}
    try:
        with Stack(LOGS, broker=own_broker_kind, settings=settings) as stack:
            stack.start(workers=1)
            yield stack, receiver
    finally:
        receiver.close()


def _descends(span: Span, ancestor: Span, by_id: dict) -> bool:
    """Whether `ancestor` is `span`'s parent, or its parent's, and so on (within one trace)."""
    while span.parent_span_id:
        if span.parent_span_id == ancestor.span_id:
            return True
        span = by_id.get(span.parent_span_id)
        if span is None:
            return False
    return False


def test_one_trace_holds_the_submission_the_execution_its_peer_calls_and_sql(traced):
    stack, receiver = traced
    api = Api(stack.api_url, token())
    response = api.submit(7)  # the cart's order: the worker reads the cart, the catalog, closes the cart
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert api.wait(job_id)["status"] == "completed"
    job = api.get(f"/jobs/{job_id}").json()

    def post_span(spans):
        return next((span for service, span in spans if service == "orders-api"
                     and span.kind == Span.SPAN_KIND_SERVER and _attr(span, "http.request.method", "http.method") == "POST"),
                    None)

    def job_span(spans):
        return next((span for service, span in spans if service == "orders-worker" and span.name == "orders.place job"
                     and _attributes(span.attributes).get("job.id") == job_id), None)

    def closed_cart(spans):
        return [span for service, span in spans if service == "orders-worker" and span.kind == Span.SPAN_KIND_CLIENT
                and _attr(span, "http.request.method", "http.method") == "PUT"
                and "/carts/7" in (_attr(span, "url.full", "http.url") or "")]

    def execution_spans(spans):
        return [span for service, span in spans if service == "orders-worker"
                and span.kind == Span.SPAN_KIND_CONSUMER and span.name.endswith("orders.place")
                and any(link.span_id == post.span_id for link in span.links)]

    post = receiver.wait_for(post_span)
    assert post is not None, "the API's server span never arrived"
    assert receiver.wait_for(job_span) is not None, "the job's placement span never arrived"
    assert receiver.wait_for(closed_cart), "the cart's closing call never arrived"
    # The execution's span ends last (it claims again before it stops) and is exported after it ends.
    assert receiver.wait_for(execution_spans), "the execution's span never arrived"
    spans = receiver.wait_for(lambda spans: spans)
    worker = [span for service, span in spans if service == "orders-worker"]
    api_spans = [span for service, span in spans if service == "orders-api"]
    by_id = {span.span_id: span for _, span in spans}

    # GET /jobs/{id} names the submission's trace; the API's INSERT and the wake-up's publish are in it.
    assert job["trace_id"] == post.trace_id.hex()
    assert any(_attr(span, "db.system", "db.system.name") == "postgresql" and _descends(span, post, by_id)
               for span in api_spans)
    assert any(span.kind == Span.SPAN_KIND_PRODUCER and span.name.endswith("orders.place")
               and _descends(span, post, by_id) for span in api_spans)

    # The execution: the Celery task's span, woken by that publish (traceparent in the task's headers),
    # linked to the submission's span, whose job stored it.
    executions = execution_spans(spans)
    assert len(executions) == 1, [span.name for span in worker]
    execution = executions[0]
    link = next(link for link in execution.links if link.span_id == post.span_id)
    assert link.trace_id == post.trace_id and _attributes(link.attributes)["job.id"] == job_id
    assert execution.trace_id == post.trace_id

    # In the order's trace, the job's placement: a child of its submission, linked to the execution.
    placed = job_span(spans)
    assert placed.trace_id == post.trace_id and placed.parent_span_id == post.span_id
    assert _attributes(placed.attributes)["job.status"] == "completed"
    assert [link.span_id for link in placed.links] == [execution.span_id]

    # The execution's peer calls (cart read, catalog read and write, cart closed) and its SQL are its
    # children (the calls run on the peer calls' event loop, in the execution's context).
    calls = {(_attr(span, "http.request.method", "http.method"), _attr(span, "url.full", "http.url").split("/")[3])
             for span in worker if span.kind == Span.SPAN_KIND_CLIENT and _attr(span, "url.full", "http.url")
             and _descends(span, execution, by_id)}
    assert {("GET", "carts"), ("GET", "products"), ("PUT", "products"), ("PUT", "carts")} <= calls
    assert any(_attr(span, "db.system", "db.system.name") == "postgresql" and _descends(span, execution, by_id)
               for span in worker)

    # The worker's line about the job names the job's trace.
    assert any(f"job={job_id}" in line and f"trace={post.trace_id.hex()}" in line
               for line in stack.workers[0].log_text().splitlines())

    # A cancellation is a job of its own request's trace, placed the same way.
    cancel = api.post(f"/orders/{job['order_id']}/cancel").json()
    assert api.wait(cancel["job_id"], until=("cancelled", "completed", "failed"))["status"] == "completed"
    cancel_trace = api.get(f"/jobs/{cancel['job_id']}").json()["trace_id"]
    assert cancel_trace is not None and cancel_trace != job["trace_id"]
    assert receiver.wait_for(lambda spans: [
        span for service, span in spans if span.name == "orders.place job" and span.trace_id.hex() == cancel_trace
        and _attributes(span.attributes)["job.id"] == cancel["job_id"]])


def test_with_tracing_off_no_trace_is_recorded_or_shown(api, worker):
    job_id = api.submit(21, [{"product_id": 2, "quantity": 1}]).json()["job_id"]
    job = api.wait(job_id)

    assert "trace_id" in job and job["trace_id"] is None
    lines = [line for line in worker.log_text().splitlines() if f"job={job_id}" in line]
    assert lines and all("trace=-" in line for line in lines)

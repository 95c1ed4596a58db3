"""Prometheus metrics of the service, and how each process exposes them.

The API runs several gunicorn processes, so it uses prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads
itself; gunicorn.conf.py sets it up, Settings.metrics_dir holds it) and sums
all processes on every scrape. The worker serves its own endpoint on
WORKER_METRICS_PORT.
"""
from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
COMPLETION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

http_requests = Counter("http_requests_total", "HTTP requests answered", ["endpoint", "method", "status"])
http_latency = Histogram("http_request_duration_seconds", "Time to answer an HTTP request",
                         ["endpoint", "method"], buckets=LATENCY_BUCKETS)
jobs_accepted = Counter("orders_jobs_accepted_total", "Order submissions accepted (new jobs)")
jobs_finished = Counter("orders_jobs_finished_total", "Jobs that reached a final status",
                        ["status", "code"])
job_completion = Histogram("orders_job_completion_seconds", "Time from submission to a final status",
                           ["status"], buckets=COMPLETION_BUCKETS)
job_retries = Counter("orders_job_retries_total", "Job attempts that ended in a retry, by cause", ["cause"])
webhook_attempts = Counter("orders_webhook_sends_total",
                           "Webhook delivery tries by result: delivered, pending (will retry), failed (gave up), "
                           "skipped (not due or already being sent)", ["result"])
rows_pruned = Counter("orders_retention_pruned_rows_total",
                      "Rows retention deleted (finished jobs older than RETENTION_DAYS and what belongs to them)",
                      ["table"])


def registry_for_scrape(multiprocess_dir: str | None) -> CollectorRegistry:
    """All processes' metrics in multiprocess mode (`multiprocess_dir`: Settings.metrics_dir), else
    this process's."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        return registry
    return REGISTRY


def render(multiprocess_dir: str | None, *extra) -> bytes:
    """The text exposition of the process's (or all processes') metrics, then of `extra` collectors."""
    scrape = CollectorRegistry(auto_describe=False)
    for collector in extra:
        scrape.register(collector)
    return generate_latest(registry_for_scrape(multiprocess_dir)) + generate_latest(scrape)

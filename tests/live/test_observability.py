"""What operators read on the live stack: logs that follow one order from the API through the worker,
Prometheus metrics summed over gunicorn's processes and the worker's own. (Request ids, the metrics'
format and JSON logs: tests/web and tests/observability.)"""
import time

import requests

from tests.prometheus import samples as _samples
from tests.prometheus import value as _value

ITEM = [{"product_id": 2, "quantity": 1}]


def test_one_order_can_be_followed_from_the_api_log_through_the_worker_log(api, api_server, worker):
    response = api.submit(21, ITEM)
    job_id = response.json()["job_id"]
    request_id = response.headers["X-Request-ID"]
    api.wait(job_id)

    api_lines = [line for line in api_server[1].log_text().splitlines() if job_id in line]
    worker_lines = [line for line in worker.log_text().splitlines() if f"job={job_id}" in line]
    assert any(f"req={request_id} job={job_id}" in line and "POST /orders/21 202" in line for line in api_lines)
    assert any(f"job {job_id} is completed" in line for line in worker_lines)


def test_api_metrics_add_up_across_gunicorn_processes(api):
    before = _samples(api.get("/metrics").text)
    for _ in range(40):
        api.get("/healthz")
    job_id = api.submit(22, ITEM).json()["job_id"]
    api.wait(job_id)
    after = _samples(api.get("/metrics").text)

    key = {"endpoint": "/healthz", "method": "GET", "status": "200"}
    assert _value(after, "http_requests_total", **key) - _value(before, "http_requests_total", **key) == 40
    assert _value(after, "orders_jobs_accepted_total") - _value(before, "orders_jobs_accepted_total") == 1
    assert _value(after, "http_request_duration_seconds_count", endpoint="/orders/<id:id>",
                  method="POST") >= 1
    assert ("orders_jobs_unfinished", (("status", "queued"),)) in after


def test_the_worker_counts_outcomes_and_completion_time(api, stack_env, peers):
    url = stack_env["worker_metrics_url"]
    before = _samples(requests.get(url, timeout=5).text)
    api.wait(api.submit(23, ITEM).json()["job_id"])
    api.wait(api.submit(23, [{"product_id": 999, "quantity": 1}]).json()["job_id"])

    def delta(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    deadline = time.monotonic() + 5  # a job is visible as ended a moment before its execution counts it
    while True:
        after = _samples(requests.get(url, timeout=5).text)
        if delta("orders_jobs_finished_total", status="rejected", code="unknown_product") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert delta("orders_jobs_finished_total", status="completed", code="") == 1
    assert delta("orders_jobs_finished_total", status="rejected", code="unknown_product") == 1
    assert delta("orders_job_completion_seconds_count", status="completed") == 1


"""`GET /metrics` in Prometheus' text format: the API's request and submission counters, and the
queue depth read from PostgreSQL. (Summed over gunicorn's processes: tests/live/test_observability.py.)"""
from tests.prometheus import samples, value

ITEM = [{"product_id": 2, "quantity": 1}]


def test_requests_submissions_and_the_queue_depth_are_exposed(api, jobs):
    for status in ("queued", "queued", "retrying"):
        jobs.park(status)
    before = samples(api.get("/metrics").text)
    for _ in range(3):
        api.get("/healthz")
    assert api.submit(22, ITEM).status_code == 202
    scrape = api.get("/metrics")
    after = samples(scrape.text)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert scrape.mimetype == "text/plain" and "version=" in scrape.headers["Content-Type"]
    assert delta("http_requests_total", endpoint="/healthz", method="GET", status="200") == 3
    assert delta("http_request_duration_seconds_count", endpoint="/orders/<id:id>", method="POST") == 1
    assert delta("orders_jobs_accepted_total") == 1
    assert {status: value(after, "orders_jobs_unfinished", status=status)
            for status in ("queued", "processing", "retrying")} == {"queued": 3, "processing": 0, "retrying": 1}

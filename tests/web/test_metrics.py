"""`GET /metrics` in Prometheus' text format: the API's request and submission counters, and the
queue's figures read from PostgreSQL (depth, oldest unfinished job's age, jobs due but unclaimed).
(Summed over gunicorn's processes: tests/live/test_observability.py.) Every metric the alert rules
name is one of these."""
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

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


def test_the_oldest_unfinished_jobs_age_and_the_jobs_due_but_unclaimed(api, jobs, engine):
    assert (value(samples(api.get("/metrics").text), "orders_jobs_oldest_unfinished_age_seconds"),
            value(samples(api.get("/metrics").text), "orders_jobs_due_unclaimed")) == (0, 0)
    due = [jobs.park("queued", due_in=-1), jobs.park("retrying", due_in=-1)]
    jobs.park("queued", due_in=3600)  # not due yet
    jobs.park("processing", due_in=-1)  # claimed, its lease run out: the sweeper's, not unclaimed
    jobs.park("completed", due_in=-1)
    with engine.begin() as connection:
        connection.execute(text("UPDATE jobs SET created_at = now() - interval '90 seconds' WHERE id = :id"),
                           {"id": due[1]})

    scrape = samples(api.get("/metrics").text)

    assert value(scrape, "orders_jobs_due_unclaimed") == 2
    assert 90 <= value(scrape, "orders_jobs_oldest_unfinished_age_seconds") < 3600
    assert value(scrape, "orders_database_up") == 1


RULES = Path(__file__).resolve().parents[2] / "observability" / "alerts.yml"
# What is not a metric in an expression: quoted strings, label matchers, ranges, grouping clauses,
# function calls, operators' keywords, numbers.
_NOT_NAMES = re.compile(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)')
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset"}
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "gauge": ("",)}


def _named_in_rules() -> set[str]:
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    return {name for rule in rules for name in _NAME.findall(_NOT_NAMES.sub(" ", rule["expr"]))
            if name not in _KEYWORDS}


def test_every_metric_the_alert_rules_name_is_exported(api):
    # The test process holds every metric of observability.metrics, the API's and the worker's alike.
    exported = {family.name + suffix for family in text_string_to_metric_families(api.get("/metrics").text)
                for suffix in _SUFFIXES.get(family.type, ("",))}

    named = _named_in_rules()

    assert {"orders_database_up", "orders_jobs_oldest_unfinished_age_seconds", "orders_jobs_due_unclaimed",
            "orders_jobs_finished_total", "orders_webhook_sends_total"} <= named
    assert named - exported == set()

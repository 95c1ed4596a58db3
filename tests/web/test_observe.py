"""Every answer carries a request id: the caller's when it is sane, else one made up; a request's log line
names it, and the job it answered with."""
import io
import logging
import re

import pytest


def test_request_ids_are_honoured_or_made_up_and_returned(api):
    mine = api.get("/healthz", headers={"X-Request-ID": "client-abc.1"})
    made_up = api.get("/healthz")
    hostile = api.get("/healthz", headers={"X-Request-ID": "bad id <script>" + "x" * 200})

    assert mine.headers["X-Request-ID"] == "client-abc.1"
    assert re.fullmatch(r"[0-9a-f]{32}", made_up.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["X-Request-ID"])


@pytest.fixture()
def log_lines(api):
    """What the app's log handler (observability.logs) writes while the test runs, line by line."""
    handler, buffer = logging.getLogger().handlers[0], io.StringIO()
    former = handler.setStream(buffer)
    yield lambda: buffer.getvalue().splitlines()
    handler.setStream(former)


def test_a_submission_is_one_request_line_naming_its_job_and_the_next_request_names_none(api, log_lines):
    submitted = api.submit(5, [{"product_id": 1, "quantity": 1}])
    api.get("/healthz")

    job_id, request_id = submitted.json["job_id"], submitted.headers["X-Request-ID"]
    lines = log_lines()
    ours = [line for line in lines if f"req={request_id}" in line]
    assert len(ours) == 1 and f"job={job_id}" in ours[0] and "POST /orders/5 202" in ours[0]
    health = [line for line in lines if "GET /healthz 200" in line]
    assert len(health) == 1 and "job=-" in health[0]

"""Every answer carries a request id: the caller's when it is sane, else one made up."""
import re


def test_request_ids_are_honoured_or_made_up_and_returned(api):
    mine = api.get("/healthz", headers={"X-Request-ID": "client-abc.1"})
    made_up = api.get("/healthz")
    hostile = api.get("/healthz", headers={"X-Request-ID": "bad id <script>" + "x" * 200})

    assert mine.headers["X-Request-ID"] == "client-abc.1"
    assert re.fullmatch(r"[0-9a-f]{32}", made_up.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["X-Request-ID"])

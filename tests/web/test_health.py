"""Liveness and readiness: open to anyone, readiness naming each dependency it checked."""


def test_readiness_reports_each_dependency(api):
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}
    assert api.get("/healthz").get_json() == {"status": "ok"}

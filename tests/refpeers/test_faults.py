"""Fault injection of the reference peers: each fault kind, scope, stats, settings validation."""
import time

import pytest
import requests

from refpeers import create_app
from refpeers.app import PEERS

DEFAULTS = {
    "latency_ms": 0.0,
    "error_rate": 0.0,
    "error_status": 503,
    "put_apply_then_error_rate": 0.0,
    "hang_rate": 0.0,
    "hang_seconds": 5.0,
    "garbage_rate": 0.0,
    "scope": "all",
}


def test_default_faults_are_off(client):
    assert client.get("/admin/faults").json == DEFAULTS


def test_a_partial_update_returns_the_full_config(client, admin):
    config = admin.faults(error_rate=0.25, scope="carts")

    assert config == {**DEFAULTS, "error_rate": 0.25, "scope": "carts"}
    assert client.get("/admin/faults").json == config


@pytest.mark.parametrize(
    "settings",
    [
        {"explode_rate": 1},
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"error_rate": "0.5"},
        {"error_rate": True},
        {"hang_rate": 2},
        {"garbage_rate": None},
        {"latency_ms": -1},
        {"hang_seconds": -1},
        {"error_status": 200},
        {"error_status": 503.0},
        {"scope": "orders"},
        {"error_rate": 0.5, "scope": "nowhere"},  # all or nothing
        [],
    ],
)
def test_invalid_settings_are_400_and_change_nothing(client, settings):
    response = client.put("/admin/faults", json=settings)

    assert response.status_code == 400
    assert "message" in response.json
    assert client.get("/admin/faults").json == DEFAULTS


def test_error_rate_1_answers_503_and_applies_nothing(client, admin):
    admin.faults(error_rate=1)

    get = client.get("/products/1")
    put = client.put("/products/1", json={"quantity": 1})
    cart = client.put("/carts/1", json={"status": "Ordered"})

    assert get.status_code == put.status_code == cart.status_code == 503
    assert get.mimetype == "application/json" and "message" in get.json
    assert "Retry-After" not in get.headers
    assert admin.product(1)["quantity"] == 1000 and admin.product(1)["version"] == 1
    assert admin.cart(1)["status"] == "Open"
    stats = admin.stats()
    assert stats["faults"]["error"] == 3
    assert stats["writes"] == {}


def test_error_status_429_carries_retry_after(client, admin):
    admin.faults(error_rate=1, error_status=429)

    response = client.get("/carts/1")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"


def test_put_apply_then_error_applies_the_write_and_answers_503(client, admin):
    admin.faults(put_apply_then_error_rate=1)
    read = client.get("/products/2")

    response = client.put("/products/2", json={**read.json, "quantity": 7}, headers={"If-Match": read.headers["ETag"]})

    assert read.status_code == 200  # reads are untouched by this fault
    assert response.status_code == 503
    assert response.mimetype == "application/json"
    assert admin.product(2)["quantity"] == 7 and admin.product(2)["version"] == 2
    stats = admin.stats()
    assert stats["faults"]["put_apply_then_error"] == 1
    assert stats["writes"] == {"2": 1}
    # A retry with the old ETag is now refused: the write already happened.
    retry = client.put("/products/2", json={**read.json, "quantity": 7}, headers={"If-Match": read.headers["ETag"]})
    assert retry.status_code == 412
    assert admin.stats()["faults"]["put_apply_then_error"] == 1  # nothing applied, no fault


def test_put_apply_then_error_leaves_cart_writes_alone(client, admin):
    admin.faults(put_apply_then_error_rate=1)

    assert client.put("/carts/1", json={"status": "Ordered"}).status_code == 200


def test_garbage_answers_html_and_applies_nothing(client, admin):
    admin.faults(garbage_rate=1)

    get = client.get("/products/1")
    put = client.put("/products/1", json={"quantity": 1})
    cart_put = client.put("/carts/1", json={"status": "Ordered"})

    for response in (get, put, cart_put):
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        assert response.get_data(as_text=True) == "<html>oops</html>"
    assert admin.product(1)["quantity"] == 1000
    assert admin.cart(1)["status"] == "Open"
    assert admin.stats()["faults"]["garbage"] == 3


def test_hang_holds_a_call_before_it_does_anything_then_does_it(client, admin):
    admin.faults(hang_rate=1, hang_seconds=60)

    with pytest.raises(requests.Timeout):  # no answer while it hangs
        client.put("/products/1", json={"quantity": 11}, timeout=0.5)
    while admin.stats()["faults"]["hang"] < 1:  # until the server has the call
        time.sleep(0.01)
    assert admin.product(1)["quantity"] == 1000  # hanging: nothing applied yet

    admin.faults(hang_seconds=0.05)
    response = client.put("/products/1", json={"quantity": 12})

    assert response.status_code == 200 and response.json["quantity"] == 12
    assert admin.product(1)["quantity"] == 12
    assert admin.stats()["faults"]["hang"] == 2


def test_latency_holds_peer_calls_but_not_admin_calls(client, admin):
    admin.faults(latency_ms=60_000)

    with pytest.raises(requests.Timeout):  # a peer call waits out the latency
        client.get("/carts/1", timeout=0.5)

    while admin.stats()["requests"]["get_cart"] < 1:  # until the server has the call
        time.sleep(0.01)
    # Admin calls are answered (within the client's 10 s) while that call waits out its minute.
    assert admin.state()["carts"]["1"]["status"] == "Open"
    assert client.get("/admin/faults").json["latency_ms"] == 60_000
    admin.faults(latency_ms=0)
    assert client.get("/carts/1").status_code == 200


def test_admin_endpoints_are_never_faulted(client, admin):
    admin.faults(error_rate=1, garbage_rate=1, hang_rate=1, hang_seconds=10)

    assert client.get("/admin/state").status_code == 200
    assert client.get("/admin/stats").status_code == 200
    assert client.get("/admin/faults").status_code == 200
    assert client.post("/admin/reset", json={}).status_code == 200
    assert client.put("/admin/faults", json={"error_rate": 0}).status_code == 200


@pytest.mark.parametrize(
    "scope, products_status, carts_status", [("products", 503, 200), ("carts", 200, 503), ("all", 503, 503)]
)
def test_scope_limits_which_paths_faults_hit(client, admin, scope, products_status, carts_status):
    admin.faults(error_rate=1, scope=scope)

    assert client.get("/products/1").status_code == products_status
    assert client.put("/products/1", json={"quantity": 1}).status_code == products_status
    assert client.get("/carts/1").status_code == carts_status
    assert client.put("/carts/1", json={"status": "Ordered"}).status_code == carts_status


def test_stats_count_requests_by_route_including_faulted_ones(client, admin):
    client.get("/products/1")
    client.get("/products/999")
    client.put("/products/1", json={"quantity": 3})
    client.put("/products/2", json={"quantity": -3})  # 400: counted, not applied
    client.get("/carts/1")
    admin.faults(error_rate=1, scope="carts")
    client.put("/carts/1", json={"status": "Ordered"})
    client.get("/products/abc")  # no route: not a peer call

    stats = admin.stats()
    assert stats["requests"] == {"get_product": 2, "put_product": 2, "get_cart": 1, "put_cart": 1}
    assert stats["faults"] == {"error": 1, "put_apply_then_error": 0, "hang": 0, "garbage": 0}
    assert stats["writes"] == {"1": 1}
    assert stats["cart_writes"] == {}


def test_reset_clears_stats_but_keeps_faults(client, admin):
    admin.faults(error_rate=1)
    client.get("/products/1")

    admin.reset(products=[{"id": 1, "quantity": 1}])

    assert admin.stats()["faults"]["error"] == 0
    assert admin.stats()["requests"]["get_product"] == 0
    assert client.get("/admin/faults").json["error_rate"] == 1.0


def test_partial_rates_follow_the_seeded_dice(monkeypatch, serve):
    monkeypatch.setenv("REFPEERS_FAULT_SEED", "42")

    def outcomes():
        client = serve(create_app("demo"))
        client.put("/admin/faults", json={"error_rate": 0.5})
        return [client.get("/products/1").status_code for _ in range(200)]

    first = outcomes()
    assert first == outcomes()
    assert 60 < first.count(503) < 140
    assert set(first) == {200, 503}


def test_initial_faults_come_from_the_environment(monkeypatch, serve):
    monkeypatch.setenv("REFPEERS_ERROR_RATE", "1")
    monkeypatch.setenv("REFPEERS_LATENCY_MS", "2.5")

    client = serve(create_app("demo"))

    assert client.get("/admin/faults").json["error_rate"] == 1.0
    assert client.get("/admin/faults").json["latency_ms"] == 2.5
    assert client.get("/products/1").status_code == 503


def test_invalid_initial_faults_are_refused(monkeypatch):
    monkeypatch.setenv("REFPEERS_ERROR_RATE", "3")
    with pytest.raises(ValueError, match="error_rate"):
        create_app("demo")


def test_an_unexpected_exception_is_a_json_500(app, client, monkeypatch):
    store = app[PEERS].store

    def boom(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(store, "get_product", boom)
    response = client.get("/products/1")

    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert "message" in response.json

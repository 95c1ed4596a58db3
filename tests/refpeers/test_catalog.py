"""The Product Catalog contract of the reference peers: reads, versioned writes, If-Match, validation."""
import threading

import pytest

from refpeers import create_app


def test_get_product_matches_the_contract(client):
    response = client.get("/products/7")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["ETag"] == '"1"'
    assert response.json == {"id": 7, "name": "Product 7", "price": 10.5, "quantity": 1000}
    assert isinstance(response.json["price"], float)


@pytest.mark.parametrize("path", ["/products/999", "/products/abc", "/products/-1", "/products/1.5", "/nowhere"])
def test_unknown_or_non_integer_ids_are_json_404s(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert isinstance(response.json["message"], str)


def test_wrong_method_is_a_json_405(client):
    response = client.post("/products/1", json={})

    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert "message" in response.json
    assert "PUT" in response.headers["Allow"]


def test_put_stores_the_quantity_and_bumps_the_etag(client, admin):
    read = client.get("/products/3")
    response = client.put("/products/3", json={**read.json, "quantity": 990})

    assert response.status_code == 200
    assert response.json == {"id": 3, "name": "Product 3", "price": 4.5, "quantity": 990}
    assert response.headers["ETag"] == '"2"'
    again = client.get("/products/3")
    assert again.json["quantity"] == 990 and again.headers["ETag"] == '"2"'
    assert client.put("/products/3", json={"quantity": 980}).headers["ETag"] == '"3"'
    assert admin.product(3) == {"id": 3, "name": "Product 3", "price": 4.5, "quantity": 980, "version": 3}


def test_put_also_stores_name_and_price_when_given(client):
    response = client.put("/products/2", json={"quantity": 5, "name": "Renamed", "price": 7})

    assert response.json == {"id": 2, "name": "Renamed", "price": 7.0, "quantity": 5}
    assert client.get("/products/2").json == response.json


def test_put_with_matching_if_match_is_applied(client):
    read = client.get("/products/4")
    response = client.put("/products/4", json={**read.json, "quantity": 1}, headers={"If-Match": read.headers["ETag"]})

    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert client.put("/products/4", json={"quantity": 2}, headers={"If-Match": "*"}).status_code == 200


def test_put_with_stale_if_match_is_412_and_applies_nothing(client, admin):
    stale = client.get("/products/5")
    client.put("/products/5", json={**stale.json, "quantity": 900})  # someone else's write

    response = client.put("/products/5", json={**stale.json, "quantity": 1}, headers={"If-Match": stale.headers["ETag"]})

    assert response.status_code == 412
    assert response.mimetype == "application/json"
    assert "message" in response.json
    assert response.headers["ETag"] == '"2"'
    assert admin.product(5)["quantity"] == 900 and admin.product(5)["version"] == 2
    assert admin.stats()["writes"] == {"5": 1}


@pytest.mark.parametrize("if_match", ['"2"', "2", 'W/"1"', '"01"', ""])
def test_if_match_is_a_strong_exact_comparison(client, admin, if_match):
    response = client.put("/products/6", json={"quantity": 1}, headers={"If-Match": if_match})

    assert response.status_code == 412
    assert admin.product(6)["quantity"] == 1000


@pytest.mark.parametrize(
    "body",
    [
        {"id": 1, "name": "Product 1", "price": 1.5},  # no quantity
        {"quantity": -1},
        {"quantity": 1.0},
        {"quantity": "5"},
        {"quantity": True},
        {"quantity": None},
        {"quantity": 5, "price": "cheap"},
        {"quantity": 5, "price": -1},
        {"quantity": 5, "name": 3},
        {"id": 2, "quantity": 5},  # body for another product
        [1, 2],
        "5",
    ],
)
def test_invalid_put_bodies_are_400_and_apply_nothing(client, admin, body):
    response = client.put("/products/1", json=body)

    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert "message" in response.json
    assert admin.product(1) == {"id": 1, "name": "Product 1", "price": 1.5, "quantity": 1000, "version": 1}


def test_a_body_that_is_not_json_is_400(client, admin):
    response = client.put("/products/1", data="quantity=5", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert admin.product(1)["quantity"] == 1000


def test_put_of_an_unknown_product_is_404(client):
    response = client.put("/products/999", json={"quantity": 1})

    assert response.status_code == 404
    assert "message" in response.json


def test_zero_quantity_is_valid(client):
    assert client.put("/products/1", json={"quantity": 0}).json["quantity"] == 0


def test_concurrent_conditional_decrements_lose_no_update(client, admin):
    """Read-modify-write with If-Match from many threads: every decrement lands exactly once."""
    threads, per_thread = 8, 25

    def worker():
        for _ in range(per_thread):
            while True:
                read = client.get("/products/1")
                body = {**read.json, "quantity": read.json["quantity"] - 1}
                if client.put("/products/1", json=body, headers={"If-Match": read.headers["ETag"]}).status_code == 200:
                    break

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()

    product = admin.product(1)
    assert product["quantity"] == 1000 - threads * per_thread
    assert product["version"] == 1 + threads * per_thread
    assert admin.stats()["writes"] == {"1": threads * per_thread}


def test_versions_restart_and_products_are_replaced_on_reset(client, admin):
    client.put("/products/1", json={"quantity": 1})
    admin.reset(products=[{"id": 1, "quantity": 3}])

    response = client.get("/products/1")
    assert response.headers["ETag"] == '"1"'
    assert response.json == {"id": 1, "name": "Product 1", "price": 0.0, "quantity": 3}
    assert client.get("/products/2").status_code == 404


def test_empty_seed_has_no_products(monkeypatch, serve):
    assert serve(create_app("empty")).get("/products/1").status_code == 404
    monkeypatch.setenv("REFPEERS_SEED", "empty")
    assert serve(create_app()).get("/products/1").status_code == 404
    monkeypatch.setenv("REFPEERS_SEED", "demo")
    assert serve(create_app()).get("/products/1").status_code == 200


def test_an_unknown_seed_is_refused():
    with pytest.raises(ValueError, match="seed"):
        create_app("lots")

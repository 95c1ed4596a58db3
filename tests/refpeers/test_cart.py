"""The Shopping Cart contract, demo data, and the admin reset/state endpoints."""
import pytest

from refpeers import demo_data


def test_get_cart_matches_the_contract(client):
    response = client.get("/carts/1")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == {
        "customer_id": 1,
        "items": [{"product_id": 2, "quantity": 1}, {"product_id": 3, "quantity": 2}],
        "status": "Open",
    }


@pytest.mark.parametrize("path", ["/carts/51", "/carts/0", "/carts/abc", "/carts/-3"])
def test_missing_or_non_integer_carts_are_json_404s(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert "message" in response.json


def test_put_merges_the_status_and_keeps_the_items(client, admin):
    response = client.put("/carts/5", json={"status": "Ordered"})

    assert response.status_code == 200
    assert response.json == {
        "customer_id": 5,
        "items": [{"product_id": 6, "quantity": 1}, {"product_id": 7, "quantity": 2}],
        "status": "Ordered",
    }
    assert client.get("/carts/5").json["status"] == "Ordered"
    assert admin.cart(5)["status"] == "Ordered"
    assert client.put("/carts/5", json={"status": "Ordered"}).status_code == 200  # idempotent
    assert admin.stats()["cart_writes"] == {"5": 2}


def test_put_can_replace_items(client):
    response = client.put("/carts/2", json={"items": [{"product_id": 9, "quantity": 4}]})

    assert response.json["items"] == [{"product_id": 9, "quantity": 4}]
    assert response.json["status"] == "Open"


def test_put_of_a_missing_cart_is_404(client):
    response = client.put("/carts/77", json={"status": "Ordered"})

    assert response.status_code == 404
    assert "message" in response.json


@pytest.mark.parametrize(
    "body",
    [["Ordered"], {"status": 1}, {"items": "none"}, {"items": [{"product_id": "x", "quantity": 1}]},
     {"customer_id": 6, "status": "Ordered"}],
)
def test_invalid_cart_puts_are_400_and_apply_nothing(client, admin, body):
    response = client.put("/carts/5", json=body)

    assert response.status_code == 400
    assert "message" in response.json
    assert admin.cart(5)["status"] == "Open"


def test_a_returned_cart_is_a_copy(client, app):
    first = client.get("/carts/3").json
    first["items"].clear()
    assert len(client.get("/carts/3").json["items"]) == 2


def test_demo_data_shape():
    data = demo_data()

    assert [p["id"] for p in data["products"]] == list(range(1, 101))
    assert data["products"][99] == {"id": 100, "name": "Product 100", "price": 150.0, "quantity": 1000}
    assert [c["customer_id"] for c in data["carts"]] == list(range(1, 51))
    assert data["carts"][49] == {
        "customer_id": 50,
        "items": [{"product_id": 51, "quantity": 1}, {"product_id": 52, "quantity": 2}],
        "status": "Open",
    }
    assert demo_data() is not demo_data() and demo_data() == data


def test_reset_replaces_all_state_and_clears_stats(client, admin):
    client.get("/carts/1")
    client.put("/products/1", json={"quantity": 1})

    answer = admin.reset(
        products=[{"id": 10, "name": "Ten", "price": 2.5, "quantity": 4}],
        carts=[{"customer_id": 9, "items": [{"product_id": 10, "quantity": 3}]}],
    )

    assert answer == {"products": 1, "carts": 1}
    assert admin.state() == {
        "products": {"10": {"id": 10, "name": "Ten", "price": 2.5, "quantity": 4, "version": 1}},
        "carts": {"9": {"customer_id": 9, "items": [{"product_id": 10, "quantity": 3}], "status": "Open"}},
    }
    stats = admin.stats()
    assert set(stats["requests"].values()) == {0} and stats["writes"] == {} and stats["cart_writes"] == {}
    assert client.get("/carts/1").status_code == 404
    assert client.get("/carts/9").json["status"] == "Open"


def test_reset_with_demo_data_restores_the_demo(client, admin):
    client.put("/products/1", json={"quantity": 1})
    admin.reset(**demo_data())

    assert client.get("/products/1").json["quantity"] == 1000
    assert len(admin.state()["products"]) == 100 and len(admin.state()["carts"]) == 50


def test_reset_with_an_empty_body_empties_everything(client, admin):
    assert client.post("/admin/reset").status_code == 200
    assert admin.state() == {"products": {}, "carts": {}}


@pytest.mark.parametrize(
    "body",
    [
        {"products": [{"id": 1}]},  # no quantity
        {"products": [{"id": "1", "quantity": 1}]},
        {"products": [{"id": 1, "quantity": 1}, {"id": 1, "quantity": 2}]},
        {"carts": [{"customer_id": 1, "items": [{"product_id": 1}]}]},
        {"carts": "none"},
        {"orders": []},
        [],
    ],
)
def test_an_invalid_reset_is_400_and_changes_nothing(client, admin, body):
    before = admin.state()

    response = client.post("/admin/reset", json=body)

    assert response.status_code == 400
    assert "message" in response.json
    assert admin.state() == before


def test_reset_of_malformed_json_is_400(client, admin):
    response = client.post("/admin/reset", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert len(admin.state()["products"]) == 100

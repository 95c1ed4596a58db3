"""Submission to completed order, through the live API, a real worker and the reference peers."""
from datetime import datetime

ITEMS = [{"product_id": 3, "quantity": 2}, {"product_id": 7, "quantity": 5}]


def test_submitted_items_become_an_order_and_take_exactly_their_stock(api, peers):
    before = {pid: peers.product(pid)["quantity"] for pid in (3, 7)}

    response = api.submit(42, ITEMS)

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["customer_id"] == 42
    assert response.headers["Location"] == f"/jobs/{body['job_id']}"
    job = api.wait(body["job_id"])
    assert job["status"] == "completed", job
    assert job["error"] is None and job["attempts"] == 1
    order_id = job["order_id"]

    order = api.get(f"/orders/{order_id}").json()
    assert order["customer_id"] == 42 and order["status"] == "Ordered"
    assert sorted((i["product_id"], i["quantity"]) for i in order["items"]) == [(3, 2), (7, 5)]
    assert [o["id"] for o in api.get("/customers/42/orders").json()["orders"]] == [order_id]
    assert [o["id"] for o in api.get("/orders", params={"customer_id": 42}).json()["orders"]] == [order_id]
    assert peers.product(3)["quantity"] == before[3] - 2
    assert peers.product(7)["quantity"] == before[7] - 5
    assert peers.cart(42 % 50 or 50)["status"] == "Open"  # a body order leaves carts alone


def test_an_order_without_a_body_orders_the_cart_and_closes_it(api, peers):
    cart = peers.cart(5)
    job = api.wait(api.submit(5).json()["job_id"])

    assert job["status"] == "completed", job
    order = api.get(f"/orders/{job['order_id']}").json()
    assert sorted((i["product_id"], i["quantity"]) for i in order["items"]) == sorted(
        (i["product_id"], i["quantity"]) for i in cart["items"])
    assert peers.cart(5)["status"] == "Ordered"


def test_insufficient_stock_is_rejected_without_order_or_stock_change(api, peers):
    peers.reset(products=[{"id": 1, "quantity": 3}, {"id": 2, "quantity": 100}])

    job = api.wait(api.submit(9, [{"product_id": 2, "quantity": 1}, {"product_id": 1, "quantity": 4}]).json()["job_id"])

    assert job["status"] == "rejected"
    assert job["error"]["code"] == "insufficient_stock"
    assert job["error"]["details"]["product_ids"] == [1]
    assert job["order_id"] is None
    assert api.get("/orders").json()["orders"] == []
    assert peers.product(1)["quantity"] == 3 and peers.product(2)["quantity"] == 100


def test_unknown_product_empty_and_missing_carts_are_rejected_with_their_codes(api, peers):
    peers.reset(carts=[{"customer_id": 1, "items": []}])

    unknown = api.wait(api.submit(1, [{"product_id": 999, "quantity": 1}]).json()["job_id"])
    empty = api.wait(api.submit(1).json()["job_id"])
    missing = api.wait(api.submit(2).json()["job_id"])

    assert (unknown["status"], unknown["error"]["code"]) == ("rejected", "unknown_product")
    assert unknown["error"]["details"]["product_ids"] == [999]
    assert (empty["status"], empty["error"]["code"]) == ("rejected", "empty_cart")
    assert (missing["status"], missing["error"]["code"]) == ("rejected", "cart_not_found")
    assert api.get("/orders").json()["orders"] == []


def test_a_peer_answering_503_for_a_while_is_retried_until_the_order_completes(api, peers):
    peers.faults(error_rate=1.0, scope="products")
    job_id = api.submit(3, ITEMS).json()["job_id"]

    retrying = api.wait(job_id, until=("retrying",), timeout=20)
    assert retrying["error"]["code"] == "peer_unavailable"
    peers.faults(error_rate=0)
    job = api.wait(job_id)

    assert job["status"] == "completed", job
    assert job["attempts"] >= 2


def test_a_peer_down_for_good_fails_the_job_once_its_retry_deadline_passed(api, peers):
    peers.faults(error_rate=1.0, scope="products")

    submitted = api.submit(3, ITEMS).json()["job_id"]
    retrying = api.wait(submitted, until=("retrying",), timeout=20)
    job = api.wait(submitted, timeout=60)

    assert retrying["error"]["code"] == "peer_unavailable"
    assert job["status"] == "failed"
    assert job["error"]["code"] == "retries_exhausted"
    assert job["error"]["details"]["last_error"] == "peer_unavailable"
    # JOB_RETRY_DEADLINE_SECONDS is 5 in the test stack: it kept trying until then, not for a count
    failed_at = datetime.fromisoformat(job["updated_at"])
    assert (failed_at - datetime.fromisoformat(job["created_at"])).total_seconds() >= 5
    assert job["attempts"] >= 2
    assert api.get("/orders").json()["orders"] == []


"""`/orders` and `/customers/{id}/orders`: what a submission may hold, idempotency keys, and listings
paginated, filtered and stable."""
from sqlalchemy import text

ITEM = [{"product_id": 1, "quantity": 1}]


def test_a_repeated_idempotency_key_answers_with_the_same_job(api, engine):
    first = api.submit(4, ITEM, key="order-abc")
    again = api.submit(4, ITEM, key="order-abc")
    other_body = api.submit(4, [{"product_id": 2, "quantity": 1}], key="order-abc")
    other_customer = api.submit(5, ITEM, key="order-abc")

    assert first.status_code == again.status_code == 202
    assert again.get_json()["job_id"] == first.get_json()["job_id"]
    assert again.headers["Location"] == first.headers["Location"] == f"/jobs/{first.get_json()['job_id']}"
    assert other_body.status_code == other_customer.status_code == 409
    with engine.connect() as connection:  # one job, so one order: a job never makes a second one
        assert connection.scalar(text("SELECT count(*) FROM jobs")) == 1
    events = api.get(f"/jobs/{first.get_json()['job_id']}/events").get_json()["events"]
    assert [(e["event"], e["status"], e["detail"]) for e in events] == [("accepted", "queued", {"source": "body"})]


def test_orders_are_paginated_filtered_and_stable(api, orders):
    for customer in (1, 2, 1, 3, 1):
        orders.place(customer)

    first = api.get("/orders", query_string={"page": 1, "page_size": 2})
    second = api.get("/orders", query_string={"page": 2, "page_size": 2})
    mine = api.get("/orders", query_string={"customer_id": 1}).get_json()["orders"]

    assert '"total": 5' in first.headers["X-Pagination"]
    ids = [o["id"] for o in first.get_json()["orders"] + second.get_json()["orders"]]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [o["customer_id"] for o in mine] == [1, 1, 1]
    assert len(api.get("/orders", query_string={"status": "Ordered"}).get_json()["orders"]) == 5
    assert api.get("/orders", query_string={"status": "Shipped"}).status_code == 422
    assert api.get("/orders", query_string={"page_size": 0}).status_code == 422
    assert api.get("/customers/77/orders").status_code == 404


def test_quantity_and_item_count_limits(api):
    too_many = [{"product_id": p, "quantity": 1} for p in range(1, 52)]
    assert api.submit(7, [{"product_id": 1, "quantity": 10_001}]).status_code == 422
    # The limit bounds each line: lines of one product are merged, and their total may exceed it.
    assert api.submit(7, [{"product_id": 1, "quantity": 6000}, {"product_id": 1, "quantity": 4001}]).status_code == 202
    assert api.submit(7, too_many).status_code == 422
    assert api.submit(7, [{"product_id": 2 ** 31, "quantity": 1}]).status_code == 422


def test_an_orders_events_are_its_placing_jobs_then_its_cancellations(api, orders):
    placed = orders.place(8)

    cancelling = api.post(f"/orders/{placed.order_id}/cancel").get_json()["job_id"]

    events = api.get(f"/orders/{placed.order_id}/events").get_json()["events"]
    assert [(e["job_id"], e["event"], e["detail"]) for e in events] == [
        (placed.job_id, "accepted", {"source": "body"}),
        (placed.job_id, "order_saved", {"order_id": placed.order_id}),
        (cancelling, "accepted", {"cancels_order_id": placed.order_id}),
    ]

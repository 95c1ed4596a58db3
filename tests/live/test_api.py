"""The HTTP contract of the live API: shapes, errors, idempotency, pagination, offline docs."""
import re

import pytest

ITEM = [{"product_id": 1, "quantity": 1}]


def test_every_error_is_the_same_json_shape(api):
    cases = [
        api.get("/nowhere"),
        api.http.delete(f"{api.url}/orders/1"),
        api.get("/orders/0"),
        api.get("/orders/2147483648"),
        api.post("/orders/1", data="{not json", headers={"Content-Type": "application/json"}),
        api.post("/orders/1", json={"items": [{"product_id": 1}]}),
        api.post("/orders/1", json={"items": []}),
        api.post("/orders/1", json={"items": ITEM, "extra": 1}),
        api.post("/orders/1", json=[1, 2]),
        api.post("/orders/1", data="items=1", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        api.post("/orders/1", json={"items": [{"product_id": 1, "quantity": "1"}]}),
        api.post("/orders/1", data="x" * 70_000, headers={"Content-Type": "application/json"}),
    ]
    expected = [404, 405, 404, 404, 400, 422, 422, 422, 422, 415, 422, 413]
    assert [r.status_code for r in cases] == expected
    for response in cases:
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        assert body["code"] == response.status_code and body["status"]


def test_the_openapi_document_declares_webhook_urls_and_where_each_answer_leads(api):
    spec = api.get("/openapi.json").json()
    schemas, paths = spec["components"]["schemas"], spec["paths"]
    for url in (schemas["OrderRequest"]["properties"]["callback_url"], schemas["WebhookSubscription"]["properties"]["url"]):
        assert url["format"] == "uri" and url["pattern"].startswith("^https?://")
    targets = {op["operationId"]: path for path, item in paths.items() for op in item.values() if "operationId" in op}
    accepted = paths["/orders/{id}"]["post"]["responses"]["202"]["links"]
    assert {targets[link["operationId"]] for link in accepted.values()} == {
        "/jobs/{job_id}", "/jobs/{job_id}/events", "/jobs/{job_id}/webhooks", "/jobs/{job_id}/cancel"}
    assert {link["parameters"]["job_id"] for link in accepted.values()} == {"$response.body#/job_id"}
    job = paths["/jobs/{job_id}"]["get"]["responses"]["200"]["links"]
    assert targets[job["order"]["operationId"]] == "/orders/{id}" and job["order"]["parameters"] == {
        "id": "$response.body#/order_id"}
    created = paths["/webhooks/subscriptions"]["post"]["responses"]["201"]["links"]
    assert targets[created["subscription"]["operationId"]] == "/webhooks/subscriptions/{subscription_id}"


def test_a_repeated_idempotency_key_answers_with_the_same_job(api):
    first = api.submit(4, ITEM, key="order-abc")
    again = api.submit(4, ITEM, key="order-abc")
    other_body = api.submit(4, [{"product_id": 2, "quantity": 1}], key="order-abc")
    other_customer = api.submit(5, ITEM, key="order-abc")

    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert other_body.status_code == other_customer.status_code == 409
    api.wait(first.json()["job_id"])
    assert len(api.get("/orders").json()["orders"]) == 1


def test_orders_are_paginated_filtered_and_stable(api):
    jobs = [api.submit(c, ITEM).json()["job_id"] for c in (1, 2, 1, 3, 1)]
    for job_id in jobs:
        assert api.wait(job_id)["status"] == "completed"

    first = api.get("/orders", params={"page": 1, "page_size": 2})
    second = api.get("/orders", params={"page": 2, "page_size": 2})
    mine = api.get("/orders", params={"customer_id": 1}).json()["orders"]

    assert '"total": 5' in first.headers["X-Pagination"]
    ids = [o["id"] for o in first.json()["orders"] + second.json()["orders"]]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [o["customer_id"] for o in mine] == [1, 1, 1]
    assert len(api.get("/orders", params={"status": "Ordered"}).json()["orders"]) == 5
    assert api.get("/orders", params={"status": "Shipped"}).status_code == 422
    assert api.get("/orders", params={"page_size": 0}).status_code == 422
    assert api.get("/customers/77/orders").status_code == 404


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_docs_are_served(api, path):
    assert api.get(path).status_code == 200


def test_swagger_ui_needs_nothing_from_the_internet(api):
    page = api.get("/docs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/") for s in sources)
    for source in sources:
        assert api.get(source).status_code == 200
    spec = api.get("/openapi.json").json()
    assert {"/orders/{id}", "/jobs/{job_id}", "/orders", "/customers/{customer_id}/orders"} <= set(spec["paths"])


def test_readiness_reports_each_dependency(api):
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert api.get("/healthz").json() == {"status": "ok"}


def test_inputs_the_fuzzer_found_are_clear_client_errors(api):
    mixed = api.post("/orders/1", json={"items": [{"product_id": 1, "quantity": 1}, 0, {"product_id": 1,
                                                                                         "quantity": 10_000}]})
    far_page = api.get("/orders", params={"page": 432131411967534592, "page_size": 43})
    odd_status = api.get("/orders", params={"status": "\x03\x10_K"})
    odd_key = api.submit(1, [{"product_id": 1, "quantity": 1}], key="has space")

    assert mixed.status_code == 422 and "1" in mixed.json()["errors"]["json"]["items"]
    assert far_page.status_code == 200 and far_page.json()["orders"] == []
    assert odd_status.status_code == 422
    assert odd_key.status_code == 422

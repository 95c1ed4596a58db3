"""The OpenAPI document and Swagger UI: served by the service itself, nothing from the internet, and
describing what a client relies on (the bearer scheme, webhook URLs, where each answer leads)."""
import re

import pytest


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_docs_are_served(api, path):
    assert api.get(path).status_code == 200


def test_swagger_ui_needs_nothing_from_the_internet(api):
    page = api.get("/docs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/") for s in sources)
    for source in sources:
        with api.get(source) as asset:
            assert asset.status_code == 200, source
    spec = api.get("/openapi.json").get_json()
    assert {"/orders/{id}", "/jobs/{job_id}", "/orders", "/customers/{customer_id}/orders", "/imports",
            "/imports/{import_id}"} <= set(spec["paths"])


def test_the_openapi_document_declares_the_bearer_scheme(api):
    spec = api.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_the_openapi_document_declares_webhook_urls_and_where_each_answer_leads(api):
    spec = api.get("/openapi.json").get_json()
    schemas, paths = spec["components"]["schemas"], spec["paths"]
    for url in (schemas["OrderRequest"]["properties"]["callback_url"], schemas["WebhookSubscription"]["properties"]["url"]):
        assert url["format"] == "uri" and url["pattern"].startswith("^https?://")
    targets = {op["operationId"]: path for path, item in paths.items() for op in item.values() if "operationId" in op}
    for path, customer in (("/customers/{customer_id}/orders", "customer_id"), ("/orders/{id}", "id")):
        accepted = paths[path]["post"]["responses"]["202"]["links"]
        assert {targets[link["operationId"]]: link["parameters"] for link in accepted.values()} == {
            **{job: {"job_id": "$response.body#/job_id"} for job in (
                "/jobs/{job_id}", "/jobs/{job_id}/events", "/jobs/{job_id}/webhooks", "/jobs/{job_id}/cancel")},
            # The order once the job created it (null before), never the order `id` of the seed's path.
            **{order: {"id": "$response.body#/order_id"} for order in (
                "/orders/{id}", "/orders/{id}/events", "/orders/{id}/cancel")},
            "/orders": {"customer_id": f"$request.path.{customer}"}}
    job = paths["/jobs/{job_id}"]["get"]["responses"]["200"]["links"]
    assert targets[job["order"]["operationId"]] == "/orders/{id}" and job["order"]["parameters"] == {
        "id": "$response.body#/order_id"}
    created = paths["/webhooks/subscriptions"]["post"]["responses"]["201"]["links"]
    assert targets[created["subscription"]["operationId"]] == "/webhooks/subscriptions/{subscription_id}"

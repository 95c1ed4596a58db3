"""Webhooks as the API takes them: callback URLs checked at submission (unusable or internal ones
refused), an idempotent retry naming the same callback, and subscriptions an admin manages, whose
deliveries customers do not see. (Sending them: tests/live/test_webhooks.py.)"""
import pytest

from devstack.tokens import token

ITEMS = [{"product_id": 21, "quantity": 2}]
HOOK = "http://127.0.0.1:9/hooks"  # allowed as deployed in the test stacks; nothing is sent here


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "http://user:secret@example.com/hook", "not a url",
                                 "http:///nohost", "", "https://" + "a" * 2050 + ".com/"])
def test_unusable_callback_urls_are_refused(api, url):
    response = api.post("/orders/83", json={"items": ITEMS, "callback_url": url})

    assert response.status_code == 422
    assert "callback_url" in response.get_json()["errors"]["json"]


def test_an_idempotent_retry_must_name_the_same_callback(api):
    first = api.post("/orders/84", json={"items": ITEMS, "callback_url": HOOK}, headers={"Idempotency-Key": "hook-1"})
    same = api.post("/orders/84", json={"items": ITEMS, "callback_url": HOOK}, headers={"Idempotency-Key": "hook-1"})
    other = api.post("/orders/84", json={"items": ITEMS, "callback_url": HOOK + "/other"},
                     headers={"Idempotency-Key": "hook-1"})

    assert first.status_code == same.status_code == 202 and same.get_json()["job_id"] == first.get_json()["job_id"]
    assert other.status_code == 409


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/hook",
                                 "http://[::ffff:192.168.0.1]/hook", "http://0.0.0.0/hook"])
def test_callbacks_to_internal_addresses_are_refused(make_api, url):
    guarded = make_api(WEBHOOK_ALLOW_PRIVATE="false")  # as production runs: private and loopback refused

    submitted = guarded.post("/orders/85", json={"items": ITEMS, "callback_url": url})
    subscribed = guarded.post("/webhooks/subscriptions", json={"url": url, "events": ["job.completed"]})

    assert submitted.status_code == 422 and "not a public address" in str(submitted.get_json()["errors"])
    assert subscribed.status_code == 422 and "not a public address" in subscribed.get_json()["message"]


def test_only_admins_manage_subscriptions_and_their_deliveries_are_not_the_customers_business(api, jobs):
    customer = api.as_(token(80, admin=False))
    assert customer.post("/webhooks/subscriptions", json={"url": HOOK, "events": ["job.rejected"]}).status_code == 403
    created = api.post("/webhooks/subscriptions", json={"url": HOOK, "events": ["job.rejected"],
                                                        "description": "support"})
    subscription = created.get_json()
    rejected = jobs.park("rejected", customer_id=81, error={"code": "insufficient_stock", "message": "too few"})
    jobs.owe(rejected, "job.rejected", HOOK, subscription_id=subscription["id"])  # as the job's end wrote it

    assert created.status_code == 201 and subscription["events"] == ["job.rejected"] and subscription["active"]
    assert api.get("/webhooks/subscriptions").get_json()["subscriptions"] == [subscription]
    assert customer.get(f"/jobs/{rejected}/webhooks").status_code == 404  # someone else's job
    own = api.as_(token(81, admin=False)).get(f"/jobs/{rejected}/webhooks").get_json()["deliveries"]
    assert own == []  # an admin's subscription is not the customer's business
    assert len(api.get(f"/jobs/{rejected}/webhooks").get_json()["deliveries"]) == 1

    assert api.http.delete(f"/webhooks/subscriptions/{subscription['id']}").status_code == 204
    assert api.get(f"/webhooks/subscriptions/{subscription['id']}").status_code == 404
    assert api.get("/webhooks/subscriptions").get_json()["subscriptions"] == []

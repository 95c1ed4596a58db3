"""Webhooks end to end: a real receiver on loopback, signatures checked the way a client would."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest
from sqlalchemy import text

from devstack import stack as procs
from devstack.stack import TEST_WEBHOOK_SECRET
from devstack.tokens import token

ITEMS = [{"product_id": 21, "quantity": 2}]


def verified(request: dict, secret: str = TEST_WEBHOOK_SECRET) -> dict:
    """Check the signature as the README tells receivers to; the parsed event."""
    parts = dict(part.split("=", 1) for part in request["headers"]["X-Order-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"]), "signature does not match the body"
    assert abs(time.time() - int(parts["t"])) < 60
    return json.loads(request["body"])


def deliveries(api, job_id: str, until=("delivered", "failed"), timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = api.get(f"/jobs/{job_id}/webhooks").json()["deliveries"]
        if found and all(d["status"] in until for d in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_completed_job_is_announced_once_signed(api, receiver):
    job_id = api.post("/orders/71", json={"items": ITEMS, "callback_url": receiver.url}).json()["job_id"]
    job = api.wait(job_id)
    event = verified(receiver.wait_for(1)[0])

    assert job["status"] == "completed" and job["callback_url"] == receiver.url
    assert event["type"] == "job.completed"
    assert event["data"]["job"]["job_id"] == job_id and event["data"]["job"]["order_id"] == job["order_id"]
    request = receiver.received[0]
    assert request["path"] == "/hooks" and request["headers"]["X-Order-Event"] == "job.completed"
    assert request["headers"]["X-Order-Delivery"] == event["id"]
    [delivery] = deliveries(api, job_id)
    assert delivery["delivery_id"] == event["id"] and delivery["status"] == "delivered"
    assert [(a["number"], a["status_code"]) for a in delivery["attempt_log"]] == [(1, 204)]
    time.sleep(1)
    assert len(receiver.received) == 1


def test_a_forged_body_does_not_verify(api, receiver):
    api.post("/orders/72", json={"items": ITEMS, "callback_url": receiver.url})
    request = dict(receiver.wait_for(1)[0])
    request["body"] = request["body"].replace(b"completed", b"cancelled")
    with pytest.raises(AssertionError, match="signature"):
        verified(request)
    with pytest.raises(AssertionError, match="signature"):
        verified(receiver.received[0], secret="another-secret-another-secret-0000")


def test_a_rejected_job_is_announced_with_its_reason(api, receiver):
    job_id = api.post("/orders/73", json={"items": [{"product_id": 21, "quantity": 5000}],
                                          "callback_url": receiver.url}).json()["job_id"]
    event = verified(receiver.wait_for(1)[0])

    assert event["type"] == "job.rejected" and event["data"]["job"]["job_id"] == job_id
    assert event["data"]["job"]["error"]["code"] == "insufficient_stock"


def test_a_failing_receiver_gets_retries_until_it_accepts(api, receiver):
    receiver.failures = 2
    job_id = api.post("/orders/74", json={"items": ITEMS, "callback_url": receiver.url}).json()["job_id"]
    received = receiver.wait_for(3)
    [delivery] = deliveries(api, job_id)

    assert receiver.answered == [503, 503, 204]
    assert len({r["headers"]["X-Order-Delivery"] for r in received}) == 1  # the same delivery, tried again
    assert all(verified(r)["type"] == "job.completed" for r in received)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["attempt_log"]] == [503, 503, 204]
    assert delivery["attempt_log"][0]["error"] == "the receiver answered 503"


def test_a_delivery_is_given_up_after_its_attempts_and_stays_on_record(api, receiver):
    receiver.failures = 100
    job_id = api.post("/orders/75", json={"items": ITEMS, "callback_url": receiver.url}).json()["job_id"]
    [delivery] = deliveries(api, job_id, until=("failed",))

    assert delivery["status"] == "failed" and delivery["attempts"] == 4  # WEBHOOK_MAX_ATTEMPTS of the stack
    assert len(receiver.received) == 4 and delivery["last_error"] == "the receiver answered 503"
    failed = api.get("/webhooks/deliveries", params={"status": "failed"}).json()["deliveries"]
    assert [d["delivery_id"] for d in failed] == [delivery["delivery_id"]]
    assert api.get(f"/webhooks/deliveries/{delivery['delivery_id']}").json()["attempts"] == 4


def test_an_unreachable_receiver_is_retried_and_recorded(api, receiver):
    url = receiver.url
    receiver.close()  # nobody listens there any more
    job_id = api.post("/orders/76", json={"items": ITEMS, "callback_url": url}).json()["job_id"]
    [delivery] = deliveries(api, job_id, until=("failed",))

    assert delivery["attempts"] == 4 and all(a["status_code"] is None for a in delivery["attempt_log"])
    assert "ConnectionError" in delivery["last_error"]


def test_cancelling_an_order_is_announced_to_the_callback_that_placed_it(api, receiver):
    order_id = api.wait(api.post("/orders/77", json={"items": ITEMS, "callback_url": receiver.url})
                        .json()["job_id"])["order_id"]
    api.wait(api.post(f"/orders/{order_id}/cancel").json()["job_id"])
    events = [verified(r) for r in receiver.wait_for(2)]

    assert [e["type"] for e in events] == ["job.completed", "order.cancelled"]
    assert events[1]["data"]["order"] == {"order_id": order_id, "customer_id": 77, "status": "Cancelled"}


def test_a_job_cancelled_before_it_starts_is_announced(api, receiver, stack_env):
    with stack_env["broker"].outage():
        job_id = api.post("/orders/78", json={"items": ITEMS, "callback_url": receiver.url}).json()["job_id"]
        assert api.post(f"/jobs/{job_id}/cancel").status_code == 200
    event = verified(receiver.wait_for(1, timeout=30)[0])  # its wake-up was lost: the sweeper sends it

    assert event["type"] == "job.cancelled" and event["data"]["job"]["status"] == "cancelled"


def test_a_delivery_whose_wake_up_was_lost_is_sent_by_the_sweeper(api, receiver, engine):
    job_id = api.wait(api.submit(79, ITEMS).json()["job_id"])["job_id"]
    delivery_id = uuid.uuid4()
    with engine.begin() as connection:  # owed long ago, never published
        connection.execute(text(
            "INSERT INTO webhook_deliveries (id, job_id, event, url, payload, next_attempt_at)"
            " VALUES (:id, :job, 'job.completed', :url, CAST(:payload AS jsonb), now() - interval '1 hour')"),
            {"id": delivery_id, "job": job_id, "url": receiver.url,
             "payload": json.dumps({"id": str(delivery_id), "type": "job.completed", "data": {}})})

    event = verified(receiver.wait_for(1)[0])

    assert event["id"] == str(delivery_id)


def test_subscriptions_hear_every_job_of_their_event_types(api, receiver):
    customer = api.as_(token(80, admin=False))
    assert customer.post("/webhooks/subscriptions", json={"url": receiver.url, "events": ["job.rejected"]}
                         ).status_code == 403
    created = api.post("/webhooks/subscriptions", json={"url": receiver.url, "events": ["job.rejected"],
                                                        "description": "support"})
    subscription = created.json()
    api.wait(api.submit(80, ITEMS).json()["job_id"])  # completed: not subscribed
    rejected = api.submit(81, [{"product_id": 22, "quantity": 5000}]).json()["job_id"]
    event = verified(receiver.wait_for(1)[0])

    assert created.status_code == 201 and subscription["events"] == ["job.rejected"] and subscription["active"]
    assert event["type"] == "job.rejected" and event["data"]["job"]["job_id"] == rejected
    assert api.get("/webhooks/subscriptions").json()["subscriptions"] == [subscription]
    assert customer.get(f"/jobs/{rejected}/webhooks").status_code == 404  # someone else's job
    own = api.as_(token(81, admin=False)).get(f"/jobs/{rejected}/webhooks").json()["deliveries"]
    assert own == []  # an admin's subscription is not the customer's business
    assert len(api.get(f"/jobs/{rejected}/webhooks").json()["deliveries"]) == 1

    assert api.http.delete(f"{api.url}/webhooks/subscriptions/{subscription['id']}").status_code == 204
    assert api.get(f"/webhooks/subscriptions/{subscription['id']}").status_code == 404
    api.wait(api.submit(82, [{"product_id": 22, "quantity": 5000}]).json()["job_id"])
    time.sleep(1)
    assert len(receiver.received) == 1


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "http://user:secret@example.com/hook", "not a url",
                                 "http:///nohost", "", "https://" + "a" * 2050 + ".com/"])
def test_unusable_callback_urls_are_refused(api, url):
    response = api.post("/orders/83", json={"items": ITEMS, "callback_url": url})

    assert response.status_code == 422
    assert "callback_url" in response.json()["errors"]["json"]


def test_an_idempotent_retry_must_name_the_same_callback(api, receiver):
    first = api.post("/orders/84", json={"items": ITEMS, "callback_url": receiver.url},
                     headers={"Idempotency-Key": "hook-1"})
    same = api.post("/orders/84", json={"items": ITEMS, "callback_url": receiver.url},
                    headers={"Idempotency-Key": "hook-1"})
    other = api.post("/orders/84", json={"items": ITEMS, "callback_url": receiver.url + "/other"},
                     headers={"Idempotency-Key": "hook-1"})

    assert first.status_code == same.status_code == 202 and same.json()["job_id"] == first.json()["job_id"]
    assert other.status_code == 409


@pytest.fixture(scope="module")
def guarded_api(stack_env):
    """An API as deployed: private and loopback callback addresses refused."""
    port = procs.free_port()
    env = {**stack_env["env"], "WEBHOOK_ALLOW_PRIVATE": "false"}
    proc = procs.start_api(port, env, stack_env["log_dir"] / "guarded")
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/hook",
                                 "http://[::ffff:192.168.0.1]/hook", "http://0.0.0.0/hook"])
def test_callbacks_to_internal_addresses_are_refused(api, guarded_api, url):
    guarded = api.as_(token())
    guarded.url = guarded_api

    submitted = guarded.post("/orders/85", json={"items": ITEMS, "callback_url": url})
    subscribed = guarded.post("/webhooks/subscriptions", json={"url": url, "events": ["job.completed"]})

    assert submitted.status_code == 422 and "not a public address" in str(submitted.json()["errors"])
    assert subscribed.status_code == 422 and "not a public address" in subscribed.json()["message"]

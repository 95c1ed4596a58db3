"""Beyond the seed, on the live stack: cancelling orders and jobs, the timeline, replaying failed jobs.
(Who may cancel or replay what, and how often: tests/web/test_jobs.py.)"""
import time

from devstack.tokens import token

ITEMS = [{"product_id": 12, "quantity": 4}, {"product_id": 13, "quantity": 1}]


def _events(api, path):
    return [e["event"] for e in api.get(path).json()["events"]]


def test_cancelling_an_order_returns_its_units_once(api, peers):
    order_id = api.wait(api.submit(61, ITEMS).json()["job_id"])["order_id"]
    assert peers.product(12)["quantity"] == 1000 - 4

    first = api.post(f"/orders/{order_id}/cancel")
    again = api.post(f"/orders/{order_id}/cancel")
    job = api.wait(first.json()["job_id"])

    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert job["status"] == "completed" and job["kind"] == "cancel" and job["cancels_order_id"] == order_id
    assert api.get(f"/orders/{order_id}").json()["status"] == "Cancelled"
    assert peers.product(12)["quantity"] == 1000 and peers.product(13)["quantity"] == 1000
    assert api.post(f"/orders/{order_id}/cancel").json()["job_id"] == first.json()["job_id"]
    assert "order_cancelled" in _events(api, f"/orders/{order_id}/events")
    assert api.as_(token(62, admin=False)).post(f"/orders/{order_id}/cancel").status_code == 404


def test_a_job_cancelled_before_it_starts_never_takes_stock(api, peers, stack_env):
    with stack_env["broker"].outage():  # nothing is dispatched: the job waits, queued
        job_id = api.submit(63, ITEMS).json()["job_id"]
        cancelled = api.post(f"/jobs/{job_id}/cancel")
        twice = api.post(f"/jobs/{job_id}/cancel")

    assert cancelled.status_code == twice.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    time.sleep(4)  # past the dispatch deadline: the sweeper would have sent it by now
    assert api.get(f"/jobs/{job_id}").json()["status"] == "cancelled"
    assert peers.product(12)["quantity"] == 1000
    assert _events(api, f"/jobs/{job_id}/events") == ["accepted", "cancelled"]


def test_the_timeline_tells_what_happened_step_by_step(api, peers):
    peers.faults(error_rate=1.0, scope="products")
    job_id = api.submit(65, ITEMS).json()["job_id"]
    api.wait(job_id, until=("retrying",), timeout=20)
    peers.faults(error_rate=0)
    job = api.wait(job_id)

    events = api.get(f"/jobs/{job_id}/events").json()["events"]
    names = [e["event"] for e in events]
    assert names[0] == "accepted" and names[-1] == "order_saved"
    assert {"attempt_started", "checking_stock", "taking_stock", "retry_scheduled"} <= set(names)
    retry = next(e for e in events if e["event"] == "retry_scheduled")
    assert retry["status"] == "retrying" and retry["detail"]["code"] == "peer_unavailable"
    assert events[-1]["detail"] == {"order_id": job["order_id"]}
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)


def test_an_admin_replays_a_failed_job(api, peers, submitted_an_hour_ago):
    peers.faults(error_rate=1.0, scope="products")
    failed_id = api.submit(66, ITEMS).json()["job_id"]
    submitted_an_hour_ago(failed_id)
    assert api.wait(failed_id, timeout=60)["status"] == "failed"
    peers.faults(error_rate=0)

    replayed = api.post(f"/jobs/{failed_id}/retry")
    job = api.wait(replayed.json()["job_id"])

    assert replayed.status_code == 202
    assert job["status"] == "completed" and job["replay_of"] == failed_id
    assert api.get(f"/jobs/{failed_id}").json()["status"] == "failed"
    assert peers.product(12)["quantity"] == 1000 - 4

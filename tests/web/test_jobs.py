"""`/jobs/{id}`: unknown ids are JSON 404s, a started job cannot be cancelled, only an admin
replays a failed job, once, a job's timeline begins with its acceptance, and a job retention pruned
is 410 Gone where its order tells it existed."""
import uuid

import pytest
from sqlalchemy import text

from devstack.tokens import token
from models.db import Database
from tasks.retention import prune


def test_unknown_and_malformed_job_ids_are_json_404s(api):
    for job_id in (uuid.uuid4(), "not-a-uuid"):
        response = api.get(f"/jobs/{job_id}")
        assert response.status_code == 404
        assert response.get_json()["code"] == 404


@pytest.mark.parametrize("status", ["processing", "retrying", "completed"])
def test_a_started_job_cannot_be_cancelled(api, jobs, status):
    job_id = jobs.park(status)

    response = api.post(f"/jobs/{job_id}/cancel")

    assert response.status_code == 409 and response.get_json()["code"] == 409
    assert api.get(f"/jobs/{job_id}").get_json()["status"] == status


def test_only_an_admin_replays_a_failed_job_and_only_once(api, jobs):
    failed_id = jobs.park("failed", customer_id=66, error={"code": "retries_exhausted", "message": "gave up"})

    customer = api.as_(token(66, admin=False))
    assert customer.post(f"/jobs/{failed_id}/retry").status_code == 403
    replayed = api.post(f"/jobs/{failed_id}/retry")
    same = api.post(f"/jobs/{failed_id}/retry")
    replay_id = replayed.get_json()["job_id"]

    assert replayed.status_code == same.status_code == 202 and same.get_json()["job_id"] == replay_id
    assert replayed.headers["Location"] == f"/jobs/{replay_id}"
    replay = api.get(f"/jobs/{replay_id}").get_json()
    assert replay["replay_of"] == failed_id and replay["status"] == "queued" and replay["customer_id"] == 66
    assert api.get(f"/jobs/{failed_id}").get_json()["status"] == "failed"  # it stays on record as it was
    assert api.post(f"/jobs/{replay_id}/retry").status_code == 409  # not failed
    assert api.post(f"/jobs/{jobs.park('completed')}/retry").status_code == 409
    assert _events(api, replay_id) == [("accepted", {"replay_of": failed_id})]
    assert _events(api, failed_id) == [("accepted", {"source": "cart"}), ("replayed", {"by_job": replay_id})]


def test_a_job_cancelled_before_it_starts_has_two_events(api, jobs):
    job_id = jobs.park("queued")

    assert api.post(f"/jobs/{job_id}/cancel").status_code == 200
    assert _events(api, job_id) == [("accepted", {"source": "cart"}), ("cancelled", None)]


def _events(api, job_id) -> list[tuple]:
    events = api.get(f"/jobs/{job_id}/events").get_json()["events"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    return [(e["event"], e["detail"]) for e in events]


@pytest.fixture()
def pruned(engine, database_url):
    """`pruned()`: every job aged past RETENTION_DAYS (30, the default) and retention run."""
    def run():
        with engine.begin() as connection:
            connection.execute(text("UPDATE jobs SET created_at = now() - interval '31 days',"
                                    " updated_at = now() - interval '31 days'"))
        database = Database(database_url)
        try:
            return prune(database, 30, 500)
        finally:
            database.dispose()
    return run


def test_a_pruned_job_is_gone_where_its_order_tells_it_existed_else_unknown(api, jobs, orders, pruned):
    placed = orders.place(customer_id=31)
    rejected_id = jobs.park("rejected", customer_id=31)

    assert pruned()["jobs"] == 2

    gone = api.get(f"/jobs/{placed.job_id}")
    assert gone.status_code == 410
    assert gone.get_json()["code"] == 410 and f"/orders/{placed.order_id}" in gone.get_json()["message"]
    assert api.as_(token(31, admin=False)).get(f"/jobs/{placed.job_id}/events").status_code == 410
    assert api.as_(token(32, admin=False)).get(f"/jobs/{placed.job_id}").status_code == 404  # not theirs
    assert api.get(f"/jobs/{rejected_id}").status_code == 404
    order = api.get(f"/orders/{placed.order_id}").get_json()
    assert order["status"] == "Ordered" and order["items"] == [{"product_id": 1, "quantity": 1}]
    assert api.get(f"/orders/{placed.order_id}/events").get_json() == {"events": []}
    cancel = api.post(f"/orders/{placed.order_id}/cancel")
    assert cancel.status_code == 409 and "pruned" in cancel.get_json()["message"]

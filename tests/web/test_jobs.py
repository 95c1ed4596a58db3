"""`/jobs/{id}`: unknown ids are JSON 404s, a started job cannot be cancelled, and only an admin
replays a failed job, once."""
import uuid

import pytest

from devstack.tokens import token


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

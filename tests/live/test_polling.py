"""Waiting for a job on the live API (gunicorn, gthread workers): more clients ask to wait than each
process holds, and submissions keep being answered while the held ones wait."""
import threading
import uuid

from sqlalchemy import text

ITEM = [{"product_id": 1, "quantity": 1}]
WAITERS = 10
# The stack's API: 2 gunicorn processes, each holding at most MAX_WAITING_REQUESTS (default 2) waits.
MOST_HELD = 2 * 2


def parked_job(engine) -> str:
    """A queued job no worker takes: it is due in a day and no wake-up was published for it."""
    job_id = str(uuid.uuid4())
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO jobs (id, customer_id, status, source, attempts, cart_status, next_run_at)"
            " VALUES (:id, 1, 'queued', 'cart', 0, 'not_needed', now() + interval '1 day')"), {"id": job_id})
    return job_id


def test_waits_past_the_bound_are_answered_at_once_and_submissions_keep_flowing(api, engine):
    job = parked_job(engine)
    cancelling = threading.Event()
    answers = []

    def wait():
        response = api.http.get(f"{api.url}/jobs/{job}", headers={"Prefer": "wait=30"}, timeout=40)
        answers.append((response, cancelling.is_set()))

    waiters = [threading.Thread(target=wait) for _ in range(WAITERS)]
    for waiter in waiters:
        waiter.start()
    # Submit until the waits past the bound have come back (at once) and 20 more submissions went
    # through since the last of them: all the while, the held ones wait.
    submissions, since_last_answer, answered = [], 0, 0
    while (len(answers) < WAITERS - MOST_HELD or since_last_answer < 20) and len(submissions) < 500:
        submissions.append(api.submit(100 + len(submissions) % 5, ITEM))
        since_last_answer = 0 if len(answers) != answered else since_last_answer + 1
        answered = len(answers)
    cancelling.set()
    cancel = api.post(f"/jobs/{job}/cancel")
    for waiter in waiters:
        waiter.join(timeout=35)

    refused = [response for response, after_cancel in answers if "Preference-Applied" not in response.headers]
    held = [response for response, after_cancel in answers if "Preference-Applied" in response.headers]
    assert cancel.status_code == 200 and not any(waiter.is_alive() for waiter in waiters)
    assert all(s.status_code == 202 and s.headers["Retry-After"] for s in submissions)  # while others waited
    assert 1 <= len(held) <= MOST_HELD and len(refused) == WAITERS - len(held)
    for response, after_cancel in answers:
        if "Preference-Applied" in response.headers:  # held until the job ended
            assert after_cancel and response.headers["Preference-Applied"] == "wait=30"
            assert response.json()["status"] == "cancelled" and "Retry-After" not in response.headers
        else:  # past the bound: at once, with when to come back
            assert not after_cancel and response.json()["status"] == "queued"
            assert response.headers["Retry-After"] == "1"


def test_a_submission_waited_on_comes_back_ended_with_its_etag(api):
    accepted = api.submit(110, ITEM)
    job_id = accepted.json()["job_id"]

    ended = api.get(f"/jobs/{job_id}", headers={"Prefer": "wait=20"})
    again = api.get(f"/jobs/{job_id}", headers={"If-None-Match": ended.headers["ETag"]})

    assert accepted.status_code == 202 and accepted.headers["Retry-After"] == "1"
    assert ended.json()["status"] == "completed" and ended.headers["Preference-Applied"] == "wait=20"
    assert "Retry-After" not in ended.headers
    assert again.status_code == 304 and again.content == b""

"""GET /jobs/{id} tells a polling client when to come back (Retry-After), whether anything changed
(ETag, 304), and holds the request while it asks to wait (Prefer: wait=N), woken by the job's end."""
import math
import threading
import time

from sqlalchemy import text

from web.waits import APPLICATION_NAME


def test_an_unfinished_job_says_when_to_come_back_and_an_ended_one_does_not(client, jobs):
    queued, processing, done = jobs.park(), jobs.park("processing"), jobs.park("completed")
    retrying = jobs.park("retrying", due_in=7)

    answers = {job: client.get(f"/jobs/{job}") for job in (queued, processing, retrying, done)}

    assert answers[queued].headers["Retry-After"] == "1"
    assert answers[processing].headers["Retry-After"] == "1"
    assert answers[retrying].headers["Retry-After"] in {"6", "7"}  # until its next attempt
    assert "Retry-After" not in answers[done].headers
    assert all(answer.status_code == 200 and answer.headers["ETag"] for answer in answers.values())


def test_a_queued_job_behind_a_backlog_is_told_to_come_back_later(make_app, jobs, engine):
    for _ in range(120):
        waiting = jobs.park()
    with engine.connect() as connection:
        backlog = connection.scalar(text("SELECT count(*) FROM jobs WHERE status IN ('queued', 'processing', 'retrying')"))

    answer = make_app().test_client().get(f"/jobs/{waiting}")

    assert answer.headers["Retry-After"] == str(min(30, math.ceil(backlog / 50))) != "1"


def test_an_unchanged_job_answers_304_without_a_body_until_it_changes(client, jobs):
    job = jobs.park()
    first = client.get(f"/jobs/{job}")
    tag = first.headers["ETag"]

    unchanged = client.get(f"/jobs/{job}", headers={"If-None-Match": tag})
    weak = client.get(f"/jobs/{job}", headers={"If-None-Match": f'"other", W/{tag}'})
    jobs.set_status(job, "processing")
    changed = client.get(f"/jobs/{job}", headers={"If-None-Match": tag})

    assert unchanged.status_code == weak.status_code == 304
    assert unchanged.data == b"" and "Content-Type" not in unchanged.headers
    assert unchanged.headers["ETag"] == tag and unchanged.headers["Retry-After"] == "1"
    assert changed.status_code == 200 and changed.get_json()["status"] == "processing"
    assert changed.headers["ETag"] != tag


def test_waiting_for_an_ended_job_answers_at_once_and_says_the_wait_applied(client, jobs):
    done = jobs.park("completed")

    capped = client.get(f"/jobs/{done}", headers={"Prefer": "wait=99"})
    among_others = client.get(f"/jobs/{done}", headers={"Prefer": "respond-async, wait=5"})
    not_understood = client.get(f"/jobs/{done}", headers={"Prefer": "wait=soon"})

    assert capped.headers["Preference-Applied"] == "wait=30"  # at most 30 seconds
    assert among_others.headers["Preference-Applied"] == "wait=5"
    assert "Preference-Applied" not in not_understood.headers  # a preference it cannot read is ignored
    assert capped.get_json()["status"] == "completed" and "Retry-After" not in capped.headers


def test_a_waiting_request_wakes_when_its_job_ends_and_past_the_bound_others_are_answered_at_once(make_app, jobs):
    app = make_app(MAX_WAITING_REQUESTS="1")
    job = jobs.park()
    held = {}

    def wait():
        held["answer"] = app.test_client().get(f"/jobs/{job}", headers={"Prefer": "wait=30"})

    def start_waiter():
        waiter = threading.Thread(target=wait)
        waiter.start()
        return waiter

    waiter, other = start_waiter(), app.test_client()
    for _ in range(30):  # until the waiter holds the process's one place
        refused = other.get(f"/jobs/{job}", headers={"Prefer": "wait=1"})
        if "Preference-Applied" not in refused.headers:
            break
        if not waiter.is_alive():  # this request held the place first, and the waiter was answered at once
            waiter = start_waiter()
    jobs.set_status(job, "cancelled")
    waiter.join(timeout=25)

    assert refused.status_code == 200 and refused.get_json()["status"] == "queued"
    assert "Preference-Applied" not in refused.headers and refused.headers["Retry-After"] == "1"
    assert not waiter.is_alive()  # woken by the job's end, well before its 30 seconds
    assert held["answer"].headers["Preference-Applied"] == "wait=30"
    assert held["answer"].get_json()["status"] == "cancelled" and "Retry-After" not in held["answer"].headers


def test_a_wait_survives_the_listening_connection_being_cut(make_app, jobs, engine):
    app = make_app()
    job = jobs.park()
    held = {}
    waiter = threading.Thread(target=lambda: held.update(answer=app.test_client().get(
        f"/jobs/{job}", headers={"Prefer": "wait=30"})))
    waiter.start()
    cut, deadline = 0, time.monotonic() + 20
    while not cut and time.monotonic() < deadline:  # once the listener has connected: cut it, as a restart would
        # A transaction per look: within one, pg_stat_activity stays the snapshot its first read took.
        with engine.begin() as connection:
            cut = connection.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = :name"), {"name": APPLICATION_NAME})
    assert cut, "the listener never connected"
    jobs.set_status(job, "failed")
    waiter.join(timeout=25)

    assert not waiter.is_alive()  # it connected again and looked again: the end was not missed
    assert held["answer"].get_json()["status"] == "failed"
    assert held["answer"].headers["Preference-Applied"] == "wait=30"


def test_with_waiting_switched_off_a_wait_is_answered_at_once(make_app, jobs):
    job = jobs.park()

    answer = make_app(MAX_WAITING_REQUESTS="0").test_client().get(f"/jobs/{job}", headers={"Prefer": "wait=30"})

    assert answer.get_json()["status"] == "queued" and answer.headers["Retry-After"] == "1"
    assert "Preference-Applied" not in answer.headers


def test_the_openapi_document_describes_polling(client):
    operation = client.get("/openapi.json").get_json()["paths"]["/jobs/{job_id}"]["get"]

    assert {p["name"] for p in operation["parameters"] if p["in"] == "header"} == {"Prefer", "If-None-Match"}
    assert set(operation["responses"]["200"]["headers"]) == {"ETag", "Retry-After", "Preference-Applied"}
    assert "304" in operation["responses"]

"""Abuse control: a rate limit per client (429 with Retry-After), and back-pressure refusing
submissions while too many jobs are unfinished (503 with Retry-After)."""
from devstack.tokens import token

ITEM = [{"product_id": 1, "quantity": 1}]


def test_rate_limit_answers_429_with_retry_after(make_api):
    strict = make_api(RATE_LIMIT="5 per minute")
    caller = strict.as_(token(201, admin=False))
    answers = [caller.get("/orders") for _ in range(7)]

    assert [r.status_code for r in answers[:5]] == [200] * 5
    assert answers[5].status_code == 429
    assert int(answers[5].headers["Retry-After"]) > 0
    assert answers[5].get_json()["code"] == 429
    assert strict.as_(token(202, admin=False)).get("/orders").status_code == 200  # limits are per client


def test_back_pressure_refuses_submissions_over_the_backlog(make_api, jobs):
    for _ in range(3):  # a backlog no worker will take (due in an hour)
        jobs.park()
    caller = make_api(MAX_UNFINISHED_JOBS="3").as_(token("ops"))

    response = caller.submit(301, ITEM)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["code"] == 503


def test_rate_limit_counts_in_the_process_while_its_redis_is_unreachable(make_api):
    cut_off = make_api(RATE_LIMIT="3 per minute", RATE_LIMIT_STORAGE_URI="redis://127.0.0.1:9/0")
    caller = cut_off.as_(token(203, admin=False))

    assert [caller.get("/orders").status_code for _ in range(4)] == [200, 200, 200, 429]

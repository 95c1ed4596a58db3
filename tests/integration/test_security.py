"""Authentication, per-customer access, limits and bad peer data, against the live stack."""
import time
import uuid

import jwt
import pytest
from sqlalchemy import text

from devstack import stack as procs
from devstack.tokens import TEST_JWT_SECRET as JWT_SECRET
from devstack.tokens import token

ITEM = [{"product_id": 1, "quantity": 1}]


def test_two_customers_cannot_touch_each_others_orders_or_jobs(api):
    alice, bob = api.as_(token(101, admin=False)), api.as_(token(102, admin=False))
    job_id = alice.submit(101, ITEM).json()["job_id"]
    order_id = alice.wait(job_id)["order_id"]

    assert bob.get(f"/jobs/{job_id}").status_code == 404
    assert bob.get(f"/orders/{order_id}").status_code == 404
    assert bob.get("/customers/101/orders").status_code == 404
    assert bob.submit(101, ITEM).status_code == 403
    assert bob.get("/orders").json()["orders"] == []
    assert bob.get("/orders", params={"customer_id": 101}).json()["orders"] == []
    assert [o["id"] for o in alice.get("/orders").json()["orders"]] == [order_id]
    assert alice.get(f"/orders/{order_id}").status_code == 200
    assert api.get(f"/orders/{order_id}").status_code == 200  # the admin token sees everything


def _bearer(claims, key=JWT_SECRET, algorithm="HS256"):
    return jwt.encode({"sub": "101", "exp": int(time.time()) + 60, **claims}, key, algorithm)


@pytest.mark.parametrize("header", [
    None,
    "Basic b3BzOnB3",
    "Bearer ",
    "Bearer garbage",
    f"Bearer {_bearer({'exp': int(time.time()) - 10})}",
    f"Bearer {_bearer({}, key='forged-' + 'k' * 60)}",
    f"Bearer {_bearer({}, key=JWT_SECRET * 2, algorithm='HS512')}",
    f"Bearer {jwt.encode({'sub': '101', 'exp': int(time.time()) + 60}, None, 'none')}",
])
def test_missing_and_bad_tokens_get_401_with_a_challenge(api, header):
    caller = api.as_(None)
    headers = {"Authorization": header} if header else {}
    for response in (caller.get("/orders", headers=headers), caller.get(f"/jobs/{uuid.uuid4()}", headers=headers),
                     caller.post("/orders/101", json={"items": ITEM}, headers=headers)):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="orders"')
        assert response.json()["code"] == 401


def test_health_docs_and_metrics_stay_open(api):
    anonymous = api.as_(None)
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/metrics"):
        assert anonymous.get(path).status_code == 200, path


def test_the_openapi_document_declares_the_bearer_scheme(api):
    spec = api.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_quantity_and_item_count_limits_and_merging(api):
    too_many = [{"product_id": p, "quantity": 1} for p in range(1, 52)]
    assert api.submit(7, [{"product_id": 1, "quantity": 10_001}]).status_code == 422
    # The limit bounds each line: lines of one product are merged, and their total may exceed it.
    assert api.submit(7, [{"product_id": 1, "quantity": 6000}, {"product_id": 1, "quantity": 4001}]).status_code == 202
    assert api.submit(7, too_many).status_code == 422
    assert api.submit(7, [{"product_id": 2 ** 31, "quantity": 1}]).status_code == 422
    merged = api.wait(api.submit(7, [{"product_id": 3, "quantity": 2}, {"product_id": 3, "quantity": 3}])
                      .json()["job_id"])
    assert api.get(f"/orders/{merged['order_id']}").json()["items"] == [{"product_id": 3, "quantity": 5}]


@pytest.mark.parametrize("scope,source", [("carts", None), ("products", ITEM)])
def test_a_peer_answering_garbage_fails_the_job_with_a_precise_code(api, peers, scope, source):
    peers.faults(garbage_rate=1.0, scope=scope)
    job = api.wait(api.submit(9, source).json()["job_id"])

    assert job["status"] == "failed"
    assert job["error"]["code"] == "bad_peer_response"
    assert peers.product(1)["quantity"] == 1000


@pytest.fixture(scope="module")
def strict_api(stack_env):
    """A second API process with a tight rate limit and a tiny backlog allowance."""
    port = procs.free_port()
    env = {**stack_env["env"], "RATE_LIMIT": "5 per minute", "MAX_UNFINISHED_JOBS": "3"}
    proc = procs.start_api(port, env, stack_env["log_dir"] / "strict")
    yield f"http://127.0.0.1:{port}"
    proc.stop()


def test_rate_limit_answers_429_with_retry_after(api, strict_api):
    caller = api.as_(token(201, admin=False))
    caller.url = strict_api
    answers = [caller.get("/orders") for _ in range(7)]

    assert [r.status_code for r in answers[:5]] == [200] * 5
    assert answers[5].status_code == 429
    assert int(answers[5].headers["Retry-After"]) > 0
    assert answers[5].json()["code"] == 429
    other = api.as_(token(202, admin=False))
    other.url = strict_api
    assert other.get("/orders").status_code == 200  # limits are per client


def test_requests_go_through_when_the_rate_limits_redis_is_unreachable(api, stack_env):
    port = procs.free_port()
    env = {**stack_env["env"], "RATE_LIMIT": "2 per minute",
           "RATE_LIMIT_STORAGE_URI": f"redis://127.0.0.1:{procs.free_port()}/0"}  # nobody listens there
    proc = procs.start_api(port, env, stack_env["log_dir"] / "limitless")
    try:
        caller = api.as_(token(203, admin=False))
        caller.url = f"http://127.0.0.1:{port}"
        assert [caller.get("/orders").status_code for _ in range(4)] == [200] * 4
        job = caller.submit(203, ITEM)
        assert job.status_code == 202
        assert caller.wait(job.json()["job_id"])["status"] == "completed"
    finally:
        proc.stop()


def test_back_pressure_refuses_submissions_over_the_backlog(api, strict_api, engine):
    with engine.begin() as connection:  # a backlog the worker will not see (never dispatched)
        for _ in range(3):
            connection.execute(text(
                "INSERT INTO jobs (id, customer_id, status, source, attempts, cart_status, next_run_at)"
                " VALUES (gen_random_uuid(), 1, 'queued', 'cart', 0, 'not_needed', now() + interval '1 day')"))
    caller = api.as_(token("ops"))
    caller.url = strict_api
    time.sleep(1.1)  # the cached backlog count expires

    response = caller.submit(301, ITEM)

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 5  # ours, or the rate window's reset if later
    assert response.json()["code"] == 503

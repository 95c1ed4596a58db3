"""Bad peer data, the rate limit's Redis out of reach, and lines merged into one order line, against the
live stack. (Tokens, per-customer access, limits, rate limit and back-pressure: tests/web.)"""
import pytest

from devstack import stack as procs
from devstack.tokens import token

ITEM = [{"product_id": 1, "quantity": 1}]


def test_lines_of_one_product_become_one_line_of_the_order(api):
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


def test_with_the_limits_redis_unreachable_orders_still_flow_and_each_process_counts_alone(api, stack_env):
    port = procs.free_port()
    env = {**stack_env["env"], "RATE_LIMIT": "3 per minute",
           "RATE_LIMIT_STORAGE_URI": f"redis://127.0.0.1:{procs.free_port()}/0"}  # nobody listens there
    proc = procs.start_api(port, env, stack_env["log_dir"] / "limitless", workers=1)
    try:
        caller = api.as_(token(203, admin=False))
        caller.url = f"http://127.0.0.1:{port}"
        assert [caller.get("/orders").status_code for _ in range(2)] == [200] * 2
        job = caller.submit(203, ITEM)
        assert job.status_code == 202
        assert caller.get("/orders").status_code == 429  # the fourth: the process counted them itself
        assert api.wait(job.json()["job_id"])["status"] == "completed"
    finally:
        proc.stop()

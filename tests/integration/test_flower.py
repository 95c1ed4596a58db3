"""Flower, on the same broker and behind basic auth, shows the worker and each order task."""
import time
from pathlib import Path

import pytest
import requests

from devstack import stack as procs

AUTH = ("ops", "flower-test-secret")
LOGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs"


@pytest.fixture(scope="module")
def flower(stack_env, worker):
    port = procs.free_port()
    proc = procs.start_flower(port, {**stack_env["env"], "FLOWER_BASIC_AUTH": ":".join(AUTH)}, LOGS)
    yield f"http://127.0.0.1:{port}"
    proc.stop()


def _tasks(flower):
    return requests.get(f"{flower}/api/tasks", auth=AUTH, timeout=10).json()


def _listening(flower, api) -> None:
    """Flower subscribes to the workers' events a moment after it answers HTTP, and an order now
    takes less than that: send orders until Flower has seen one."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = api.submit(30, [{"product_id": 8, "quantity": 1}]).json()["job_id"]
        api.wait(probe)
        time.sleep(0.5)
        if any(task.get("args") and probe in task["args"] for task in _tasks(flower).values()):
            return
    pytest.fail("Flower never showed a task")


def test_flower_refuses_anyone_without_credentials(flower):
    assert requests.get(f"{flower}/", timeout=10).status_code == 401
    assert requests.get(f"{flower}/api/workers", timeout=10).status_code == 401
    assert requests.get(f"{flower}/api/workers", auth=("ops", "wrong"), timeout=10).status_code == 401


def test_flower_shows_the_worker_and_each_order_task_with_its_outcome(flower, api):
    _listening(flower, api)
    jobs = [api.submit(31, [{"product_id": 8, "quantity": 1}]).json()["job_id"],
            api.submit(32, [{"product_id": 999, "quantity": 1}]).json()["job_id"]]
    for job_id in jobs:
        api.wait(job_id)

    def results_by_job():
        found = {job_id: set() for job_id in jobs}
        for task in _tasks(flower).values():
            for job_id in jobs:
                if task.get("args") and job_id in task["args"] and task["name"] == "orders.place":
                    found[job_id].add((task["state"], (task.get("result") or "").strip("'\""), task["runtime"] is not None))
        return found

    deadline = time.monotonic() + 30
    found = results_by_job()
    while time.monotonic() < deadline and not all(("SUCCESS", r, True) in found[j]
                                                   for j, r in zip(jobs, ("completed", "rejected"))):
        time.sleep(0.5)
        found = results_by_job()
    workers = requests.get(f"{flower}/api/workers", auth=AUTH, params={"refresh": "true"}, timeout=20).json()

    assert any(name.startswith("worker1@") for name in workers)
    # A job may have been woken more than once (the sweeper); each ends with its job's status.
    assert ("SUCCESS", "completed", True) in found[jobs[0]], found
    assert ("SUCCESS", "rejected", True) in found[jobs[1]], found


def test_flower_shows_which_step_a_running_order_is_in(flower, api, peers):
    _listening(flower, api)
    peers.faults(latency_ms=300, scope="products")
    job_id = api.submit(33, [{"product_id": 8, "quantity": 1}, {"product_id": 9, "quantity": 1}]).json()["job_id"]

    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "SUCCESS" not in seen:
        seen |= {t["state"] for t in _tasks(flower).values() if t.get("args") and job_id in t["args"]}
        time.sleep(0.1)

    assert {"CHECKING_STOCK", "TAKING_STOCK"} & seen, seen
    assert "SUCCESS" in seen


def test_flower_broker_page_shows_the_redis_queue(flower, stack_env):
    """Flower reads the broker's URL to pick its client: the Redis transport keeps the redis:// scheme."""
    if stack_env["broker"].kind != "redis":
        pytest.skip("Flower's broker page reads RabbitMQ through its management API, which the stack has not")
    page = requests.get(f"{flower}/broker", auth=AUTH, timeout=10)

    assert page.status_code == 200
    assert "redis://" in page.text
    assert ">celery<" in page.text.replace(" ", "").replace("\n", "")

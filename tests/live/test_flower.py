"""Flower, on the same broker and behind basic auth, shows the worker and each execution with its jobs."""
import ast
import time

import pytest
import requests

from devstack import stack as procs

AUTH = ("ops", "flower-test-secret")


@pytest.fixture(scope="module")
def flower(stack_env, worker):
    port = procs.free_port()
    proc = procs.start_flower(port, {**stack_env["env"], "FLOWER_BASIC_AUTH": ":".join(AUTH)}, stack_env["log_dir"])
    yield f"http://127.0.0.1:{port}"
    proc.stop()


def _tasks(flower):
    return requests.get(f"{flower}/api/tasks", auth=AUTH, timeout=10).json()


def _placed(task: dict) -> dict:
    """The jobs an `orders.place` execution names in its result, with each one's status."""
    if task.get("name") != "orders.place" or not task.get("result"):
        return {}
    return ast.literal_eval(task["result"])


def _listening(flower, api) -> None:
    """Flower subscribes to the workers' events a moment after it answers HTTP, and an order now
    takes less than that: send orders until Flower has seen one."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = api.submit(30, [{"product_id": 8, "quantity": 1}]).json()["job_id"]
        api.wait(probe)
        time.sleep(0.5)
        if any(probe in _placed(task) for task in _tasks(flower).values()):
            return
    pytest.fail("Flower never showed a task")


def test_flower_refuses_anyone_without_credentials(flower):
    assert requests.get(f"{flower}/", timeout=10).status_code == 401
    assert requests.get(f"{flower}/api/workers", timeout=10).status_code == 401
    assert requests.get(f"{flower}/api/workers", auth=("ops", "wrong"), timeout=10).status_code == 401


def test_flower_shows_the_worker_and_each_execution_with_the_jobs_it_placed(flower, api):
    _listening(flower, api)
    jobs = [api.submit(31, [{"product_id": 8, "quantity": 1}]).json()["job_id"],
            api.submit(32, [{"product_id": 999, "quantity": 1}]).json()["job_id"]]
    final = {job_id: api.wait(job_id) for job_id in jobs}

    def results_by_job():
        found = {job_id: set() for job_id in jobs}
        for task_id, task in _tasks(flower).items():
            for job_id, status in _placed(task).items():
                if job_id in found:
                    found[job_id].add((task_id, task["state"], status))
        return found

    deadline = time.monotonic() + 30
    found = results_by_job()
    while time.monotonic() < deadline and not all(found.values()):
        time.sleep(0.5)
        found = results_by_job()
    workers = requests.get(f"{flower}/api/workers", auth=AUTH, params={"refresh": "true"}, timeout=20).json()

    assert any(name.startswith("worker1@") for name in workers)
    # The job names the execution that placed it; in Flower, that task's result names the job.
    assert (final[jobs[0]]["task_id"], "SUCCESS", "completed") in found[jobs[0]], found
    assert (final[jobs[1]]["task_id"], "SUCCESS", "rejected") in found[jobs[1]], found


def test_flower_shows_which_step_a_running_execution_is_in(flower, api, peers):
    _listening(flower, api)
    peers.faults(latency_ms=300, scope="products")
    job_id = api.submit(33, [{"product_id": 8, "quantity": 1}, {"product_id": 9, "quantity": 1}]).json()["job_id"]

    seen, deadline = set(), time.monotonic() + 30
    while time.monotonic() < deadline and "SUCCESS" not in seen:
        task_id = api.get(f"/jobs/{job_id}").json()["task_id"]
        if task_id:
            info = requests.get(f"{flower}/api/task/info/{task_id}", auth=AUTH, timeout=10)
            if info.status_code == 200:
                seen.add(info.json()["state"])
        time.sleep(0.1)

    assert "TAKING_STOCK" in seen, seen
    assert "SUCCESS" in seen


def test_flower_broker_page_shows_the_redis_queue(flower, stack_env):
    """Flower reads the broker's URL to pick its client: the Redis transport keeps the redis:// scheme."""
    if stack_env["broker"].kind != "redis":
        pytest.skip("Flower's broker page reads RabbitMQ through its management API, which the stack has not")
    page = requests.get(f"{flower}/broker", auth=AUTH, timeout=10)

    assert page.status_code == 200
    assert "redis://" in page.text
    assert ">celery<" in page.text.replace(" ", "").replace("\n", "")

"""At-least-once delivery, crashes and broker loss never double, lose or oversell anything."""
import threading
import time

from sqlalchemy import text


def _orders_for(engine, job_id):
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM orders WHERE job_id = :j"), {"j": job_id}).scalar()


def test_the_same_job_delivered_many_times_at_once_gives_one_order(api, peers, engine, publish, stack_env):
    peers.faults(latency_ms=30)
    with stack_env["broker"].outage():  # the job's own wake-up is not sent: the six below arrive together
        job_id = api.submit(11, [{"product_id": 4, "quantity": 3}]).json()["job_id"]
    publish(times=6)

    job = api.wait(job_id)
    time.sleep(1)  # let every duplicate delivery run to its end

    assert job["status"] == "completed"
    assert _orders_for(engine, job_id) == 1
    assert peers.product(4)["quantity"] == 1000 - 3


def test_fifty_concurrent_orders_for_ten_units_sell_exactly_ten(api, peers, engine):
    peers.reset(products=[{"id": 1, "quantity": 10}])
    results = []

    def submit(customer):
        results.append(api.submit(customer, [{"product_id": 1, "quantity": 1}]).json()["job_id"])

    threads = [threading.Thread(target=submit, args=(c,)) for c in range(1, 51)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jobs = [api.wait(job_id, timeout=120) for job_id in results]

    statuses = [job["status"] for job in jobs]
    assert statuses.count("completed") == 10
    assert statuses.count("rejected") == 40
    assert {job["error"]["code"] for job in jobs if job["status"] == "rejected"} == {"insufficient_stock"}
    assert peers.product(1)["quantity"] == 0
    with engine.connect() as connection:
        assert connection.execute(text("SELECT sum(quantity) FROM order_items")).scalar() == 10


def test_a_put_applied_then_answered_503_is_not_applied_twice(api, peers, engine):
    peers.faults(put_apply_then_error_rate=1.0, scope="products")

    job = api.wait(api.submit(8, [{"product_id": 5, "quantity": 2}, {"product_id": 6, "quantity": 1}]).json()["job_id"])

    assert job["status"] == "completed", job
    assert peers.product(5)["quantity"] == 1000 - 2
    assert peers.product(6)["quantity"] == 1000 - 1
    assert peers.stats()["faults"]["put_apply_then_error"] >= 2
    with engine.connect() as connection:
        states = connection.execute(text("SELECT DISTINCT state FROM inventory_moves")).scalars().all()
    assert states == ["applied"]


def test_broker_down_at_submission_still_accepts_and_completes_once_the_broker_is_back(api, peers, stack_env):
    with stack_env["broker"].outage():
        response = api.submit(12, [{"product_id": 9, "quantity": 1}])
        assert response.status_code == 202
        job_id = response.json()["job_id"]
        assert api.get(f"/jobs/{job_id}").json()["status"] == "queued"

    job = api.wait(job_id, timeout=90)

    assert job["status"] == "completed", job
    assert peers.product(9)["quantity"] == 1000 - 1


def test_a_worker_killed_mid_order_leaves_nothing_half_done(api, peers, engine, worker):
    peers.faults(latency_ms=400, scope="products")
    job_id = api.submit(13, [{"product_id": 20, "quantity": 2}, {"product_id": 21, "quantity": 2}]).json()["job_id"]
    api.wait(job_id, until=("processing",), timeout=20)
    time.sleep(0.9)  # somewhere inside the stock steps

    worker.kill()
    worker.start()
    worker.wait_for_log("ready.", timeout=60)
    peers.faults(latency_ms=0)
    job = api.wait(job_id, timeout=90)

    assert job["status"] == "completed", job
    assert _orders_for(engine, job_id) == 1
    assert peers.product(20)["quantity"] == 1000 - 2
    assert peers.product(21)["quantity"] == 1000 - 2

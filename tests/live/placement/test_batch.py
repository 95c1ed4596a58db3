"""Batches placed by a plain call, against the real PostgreSQL and the reference peers: one read
and one write per product, allocation in arrival order, per-job failures, crashes mid-batch."""
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from sqlalchemy import func, select

from models.inventory import APPLIED, InventoryMove, StockWrite
from models.jobs import Job

ROOT = Path(__file__).resolve().parents[3]


def _count(runtime, query):
    with runtime.db.transaction() as session:
        return session.scalar(query)


def test_a_batch_reads_and_writes_each_product_once_for_all_its_jobs(jobs, peers, runtime):
    ids = [jobs.submit(c, [{"product_id": 5, "quantity": 1}, {"product_id": 6, "quantity": c}]) for c in range(1, 11)]
    peers.reset()  # counters from zero

    outcomes = jobs.place()

    assert {outcomes[job_id].status for job_id in ids} == {"completed"}
    stats = peers.stats()
    assert stats["requests"]["get_product"] == 2 and stats["requests"]["put_product"] == 2
    assert stats["writes"] == {"5": 1, "6": 1}
    assert peers.product(5)["quantity"] == 1000 - 10
    assert peers.product(6)["quantity"] == 1000 - sum(range(1, 11))
    assert _count(runtime, select(func.count()).select_from(StockWrite)) == 2
    assert _count(runtime, select(func.count()).select_from(InventoryMove).where(InventoryMove.state == APPLIED)) == 20


def test_jobs_that_do_not_fit_take_nothing_and_the_rest_are_served_in_arrival_order(jobs, peers, runtime):
    peers.reset(products=[{"id": 40, "quantity": 5}, {"id": 41, "quantity": 100}])
    first = jobs.submit(1, [{"product_id": 40, "quantity": 3}, {"product_id": 41, "quantity": 1}])
    too_many = jobs.submit(2, [{"product_id": 40, "quantity": 3}, {"product_id": 41, "quantity": 1}])
    last = jobs.submit(3, [{"product_id": 40, "quantity": 2}])

    outcomes = jobs.place()

    assert outcomes[first].status == outcomes[last].status == "completed"
    refused = jobs.get(too_many)
    assert refused.status == "rejected" and refused.error["code"] == "insufficient_stock"
    assert refused.error["details"] == {"product_ids": [40], "available": {"40": 2}}
    assert peers.product(40)["quantity"] == 0 and peers.product(41)["quantity"] == 99
    # it took nothing, so there is nothing to give back: no move of its own, no compensation
    assert _count(runtime, select(func.count()).select_from(InventoryMove).where(InventoryMove.job_id == too_many)) == 0
    assert peers.stats()["writes"] == {"40": 1, "41": 1}


def test_a_job_whose_cart_is_missing_ends_alone_and_its_batch_goes_on(jobs, peers):
    no_cart = jobs.submit(999)  # the demo data has carts for customers 1-50 only
    from_cart = jobs.submit(5)
    from_body = jobs.submit(6, [{"product_id": 7, "quantity": 2}])

    outcomes = jobs.place()

    assert outcomes[no_cart].status == "rejected" and outcomes[no_cart].code == "cart_not_found"
    assert outcomes[from_cart].status == outcomes[from_body].status == "completed"
    assert peers.cart(5)["status"] == "Ordered"
    assert peers.product(7)["quantity"] < 1000


def test_an_unknown_product_rejects_only_the_jobs_that_asked_for_it(jobs, peers):
    unknown = jobs.submit(1, [{"product_id": 3, "quantity": 1}, {"product_id": 9999, "quantity": 1}])
    fine = jobs.submit(2, [{"product_id": 3, "quantity": 1}])

    outcomes = jobs.place()

    assert outcomes[unknown].code == "unknown_product"
    assert jobs.get(unknown).error["details"] == {"product_ids": [9999]}
    assert outcomes[fine].status == "completed"
    assert peers.product(3)["quantity"] == 999


def test_two_batches_sharing_hot_products_at_once_never_oversell(jobs, peers, runtime):
    peers.reset(products=[{"id": 50, "quantity": 30}, {"id": 51, "quantity": 1000}])
    peers.faults(latency_ms=10)
    ids = [jobs.submit(c, [{"product_id": 50, "quantity": 1}, {"product_id": 51, "quantity": 2}]) for c in range(60)]
    outcomes, errors = {}, []

    def worker():
        try:
            while placed := jobs.place():
                outcomes.update(placed)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert not errors
    statuses = [outcomes[job_id].status for job_id in ids]
    assert statuses.count("completed") == 30 and statuses.count("rejected") == 30
    assert peers.product(50)["quantity"] == 0
    assert peers.product(51)["quantity"] == 1000 - 2 * 30
    assert len({jobs.get(job_id).task_id for job_id in ids}) > 1  # both executions placed some


def test_a_put_applied_then_answered_503_inside_a_batch_is_counted_once(jobs, peers, runtime):
    peers.faults(put_apply_then_error_rate=1.0, scope="products")
    ids = [jobs.submit(c, [{"product_id": 60, "quantity": 2}]) for c in range(1, 4)]

    outcomes = jobs.place()

    assert {outcomes[job_id].status for job_id in ids} == {"completed"}
    assert peers.product(60)["quantity"] == 1000 - 6
    assert peers.stats()["writes"] == {"60": 1}
    assert _count(runtime, select(StockWrite.state)) == APPLIED


def _dead_workers_write(runtime, jobs, peers_url, product_id, quantity, etag=True):
    """A pending write as a worker leaves it when it dies right after sending its PUT, and that PUT."""
    import requests

    product = requests.get(f"{peers_url}/products/{product_id}", timeout=5)
    before = product.json()["quantity"]
    dead_job = jobs.submit(77, [{"product_id": product_id, "quantity": quantity}])
    with runtime.db.transaction() as session:
        write = StockWrite(product_id=product_id, state="pending", quantity_before=before,
                           quantity_after=before - quantity, etag_before=product.headers["ETag"] if etag else None)
        session.add(write)
        session.flush()
        session.add(InventoryMove(job_id=dead_job, product_id=product_id, kind="take", quantity=quantity,
                                  state="pending", write_id=write.id))
    headers = {"If-Match": product.headers["ETag"]} if etag else {}
    late_put = lambda: requests.put(  # noqa: E731 - the request still on its way
        f"{peers_url}/products/{product_id}", json={**product.json(), "quantity": before - quantity},
        headers=headers, timeout=5)
    return dead_job, before, late_put


def _move_state(runtime, job_id):
    return _count(runtime, select(InventoryMove.state).where(InventoryMove.job_id == job_id))


def test_a_write_still_in_flight_is_fenced_and_can_never_land(jobs, peers, runtime, stack_env):
    dead_job, before, late_put = _dead_workers_write(runtime, jobs, stack_env["peers_url"], 30, 2)
    with runtime.db.transaction() as session:  # its job is not due: only its write is in the way
        session.get(Job, dead_job).status = "failed"
    new = jobs.submit(1, [{"product_id": 30, "quantity": 1}])

    assert jobs.place()[new].status == "completed"

    assert late_put().status_code == 412
    assert _move_state(runtime, dead_job) == "planned"
    assert peers.product(30)["quantity"] == before - 1


def test_a_late_put_without_etags_that_landed_first_is_counted_once(jobs, peers, runtime, stack_env):
    dead_job, before, late_put = _dead_workers_write(runtime, jobs, stack_env["peers_url"], 31, 2, etag=False)
    assert late_put().status_code == 200  # it lands before the next holder of the product comes

    outcomes = jobs.place()  # the dead job itself is due again too: its take is already in

    assert _move_state(runtime, dead_job) == APPLIED
    assert outcomes[dead_job].status == "completed"
    assert peers.product(31)["quantity"] == before - 2


_KILLED_BEFORE_COMMIT = """
import os, signal, sys, uuid
from placement import batch, jobs
from settings import get_settings
from tasks.runtime import WorkerRuntime

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # the catalog writes are in; the orders are not saved

jobs.complete = die
runtime = WorkerRuntime(get_settings())
with runtime.placement() as ctx:
    batch.place(ctx, sys.argv[1], runtime.limits, runtime.policy)
"""


def test_a_worker_killed_between_the_catalog_write_and_the_commit_takes_the_stock_once(jobs, peers, runtime,
                                                                                      stack_env):
    ids = [jobs.submit(c, [{"product_id": 70, "quantity": 3}]) for c in range(1, 4)]
    task_id = str(uuid.uuid4())

    died = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_COMMIT, task_id], env=stack_env["env"], cwd=ROOT,
                          timeout=60)
    assert died.returncode == -signal.SIGKILL
    assert peers.product(70)["quantity"] == 1000 - 9  # taken, not yet recorded as orders
    assert {jobs.get(job_id).status for job_id in ids} == {"processing"}

    outcomes = jobs.place(task_id)  # the redelivered task: its jobs are free again at once

    assert {outcomes[job_id].status for job_id in ids} == {"completed"}
    assert peers.product(70)["quantity"] == 1000 - 9
    assert peers.stats()["writes"] == {"70": 1}


def test_a_batch_that_cannot_get_its_products_in_time_waits_its_turn_and_holds_nothing(jobs, peers, engine):
    from models.locks import TRY_LOCK, UNLOCK_EVERYTHING, product_key

    job_id = jobs.submit(1, [{"product_id": 80, "quantity": 1}, {"product_id": 81, "quantity": 1}])
    with engine.connect() as other:
        assert other.execute(TRY_LOCK, {"key": product_key(81)}).scalar()  # another execution's write

        outcome = jobs.place()[job_id]

        assert outcome.status == "retrying" and outcome.code == "stock_busy"
        # it got product 80 before it waited for 81: it let it go
        assert other.execute(TRY_LOCK, {"key": product_key(80)}).scalar()
        other.execute(UNLOCK_EVERYTHING)
    assert peers.product(80)["quantity"] == peers.product(81)["quantity"] == 1000


def test_each_job_of_a_batch_has_its_whole_timeline(jobs, runtime):
    from models.events import JobEvent

    ids = [jobs.submit(1, [{"product_id": 2, "quantity": 1}]), jobs.submit(2)]

    jobs.place()

    with runtime.db.transaction() as session:
        for job_id in ids:
            names = session.scalars(select(JobEvent.event).where(JobEvent.job_id == job_id)
                                    .order_by(JobEvent.at, JobEvent.id)).all()
            assert names[:3] == ["attempt_started", "checking_stock", "taking_stock"], names
            assert "order_saved" in names

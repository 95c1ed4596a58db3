"""The inventory protocol called directly (no Celery), against PostgreSQL and the reference catalog."""
import uuid

import pytest
import requests
from sqlalchemy import select

from models.inventory import APPLIED, PENDING, PLANNED, TAKE, InventoryMove
from models.jobs import Job
from placement import inventory
from settings import Settings
from tasks.runtime import WorkerRuntime


@pytest.fixture()
def runtime(stack_env, empty_tables, peers):
    runtime = WorkerRuntime(Settings.from_env(stack_env["env"]))
    yield runtime
    runtime.db.dispose()


def _job(runtime) -> uuid.UUID:
    with runtime.db.transaction() as session:
        job = Job(customer_id=1, source="body", requested_items=[], cart_status="not_needed")
        session.add(job)
        session.flush()
        return job.id


def _dead_workers_write(runtime, peers_url, product_id, quantity):
    """A pending take as a worker leaves it when it dies right after sending its PUT."""
    product = requests.get(f"{peers_url}/products/{product_id}", timeout=5)
    before, etag = product.json()["quantity"], product.headers["ETag"]
    job_id = _job(runtime)
    with runtime.db.transaction() as session:
        session.add(InventoryMove(job_id=job_id, product_id=product_id, kind=TAKE, quantity=quantity, state=PENDING,
                                  quantity_before=before, quantity_after=before - quantity, etag_before=etag))
    late_put = lambda: requests.put(  # noqa: E731 - the request still on its way
        f"{peers_url}/products/{product_id}", json={**product.json(), "quantity": before - quantity},
        headers={"If-Match": etag}, timeout=5)
    return job_id, before, late_put


def _state(runtime, job_id, product_id):
    with runtime.db.transaction() as session:
        return session.scalar(select(InventoryMove.state).where(
            InventoryMove.job_id == job_id, InventoryMove.product_id == product_id))


def test_a_write_still_in_flight_is_fenced_and_can_never_land(runtime, peers, stack_env):
    dead_job, before, late_put = _dead_workers_write(runtime, stack_env["peers_url"], 30, 2)
    with runtime.placement() as ctx:
        inventory.take(ctx, _job(runtime), 30, 1)

    assert late_put().status_code == 412
    assert _state(runtime, dead_job, 30) == PLANNED
    assert peers.product(30)["quantity"] == before - 1


def test_a_write_that_landed_before_the_next_holder_came_is_counted_once(runtime, peers, stack_env):
    dead_job, before, late_put = _dead_workers_write(runtime, stack_env["peers_url"], 31, 2)
    assert late_put().status_code == 200
    with runtime.placement() as ctx:
        inventory.take(ctx, _job(runtime), 31, 1)

    assert _state(runtime, dead_job, 31) == APPLIED
    assert peers.product(31)["quantity"] == before - 3


def test_giving_back_returns_what_was_taken_once(runtime, peers):
    job_id = _job(runtime)
    with runtime.placement() as ctx:
        inventory.take(ctx, job_id, 32, 4)
        inventory.give_back_all(ctx, job_id)
        inventory.give_back_all(ctx, job_id)

    assert peers.product(32)["quantity"] == 1000


def test_a_take_beyond_the_stock_is_refused_and_changes_nothing(runtime, peers):
    from placement.errors import JobRejected

    peers.reset(products=[{"id": 33, "quantity": 2}])
    job_id = _job(runtime)
    with runtime.placement() as ctx, pytest.raises(JobRejected) as refused:
        inventory.take(ctx, job_id, 33, 3)

    assert refused.value.code == "insufficient_stock"
    assert peers.product(33)["quantity"] == 2
    assert _state(runtime, job_id, 33) is None  # nothing was sent, so nothing is ledgered

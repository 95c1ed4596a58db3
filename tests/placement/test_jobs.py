"""A job's life through placed batches: claimed oldest first, a batch at a time, by one execution at
a time; retried after a fault without repeating what it did; given up after its deadline, giving back
what it took; and its timeline telling each step."""
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models.events import JobEvent
from models.inventory import APPLIED
from models.jobs import Job
from models.orders import Order
from placement.batch import Limits
from tests.placement.harness import stop_at


class Killed(BaseException):
    """The execution's process died here (nothing of placement's handles it)."""


def test_jobs_are_claimed_oldest_first_a_batch_at_a_time(placement, peers):
    ids = [placement.submit(c, [{"product_id": 1, "quantity": 1}]) for c in range(1, 6)]
    placement.limits = Limits(2, placement.limits.lease)

    batches = [list(placement.place()) for _ in range(4)]

    assert batches == [ids[0:2], ids[2:4], ids[4:5], []]
    assert peers.stats()["writes"] == {"1": 3}


def test_a_job_an_execution_holds_is_not_claimed_by_another(placement, peers):
    job_id = placement.submit(1, [{"product_id": 1, "quantity": 1}])
    elsewhere = []

    outcome = placement.place(on_step=lambda step: elsewhere.append(placement.place()) if not elsewhere else None)

    assert elsewhere == [{}]
    assert outcome[job_id].status == "completed"
    assert placement.count(Order) == 1 and peers.product(1)["quantity"] == 999


def test_a_redelivered_execution_takes_its_jobs_back_at_once_and_writes_no_stock_again(placement, peers):
    ids = [placement.submit(c, [{"product_id": 70, "quantity": 3}]) for c in range(1, 4)]

    with pytest.raises(Killed):
        placement.place("task-1", on_step=stop_at("saving_order", Killed()))
    assert {placement.get(job_id).status for job_id in ids} == {"processing"}
    assert peers.product(70)["quantity"] == 1000 - 9  # taken, not yet recorded as orders
    assert placement.place("task-2") == {}  # another execution: their lease has not run out

    outcomes = placement.place("task-1")  # the same task, redelivered

    assert {outcomes[job_id].status for job_id in ids} == {"completed"}
    assert all(placement.ordered(job_id) == {70: 3} for job_id in ids)
    assert peers.product(70)["quantity"] == 1000 - 9
    assert peers.stats()["writes"] == {"70": 1}
    placement.assert_settled()


def test_a_job_the_catalog_cannot_serve_now_retries_later_and_then_completes(placement, peers):
    job_id = placement.submit(1, [{"product_id": 3, "quantity": 2}])
    peers.faults(error_rate=1.0, scope="products")

    outcome = placement.place()[job_id]

    assert outcome.status == "retrying" and outcome.code == "peer_unavailable"
    job = placement.get(job_id)
    assert job.status == "retrying" and job.attempts == 1 and job.error["code"] == "peer_unavailable"
    assert placement.place() == {}  # not due before its backoff ran out
    assert placement.moves(job_id) == {} and placement.ordered(job_id) is None

    peers.faults(error_rate=0.0)
    placement.due_now(job_id)
    assert placement.place()[job_id].status == "completed"

    job = placement.get(job_id)
    assert job.status == "completed" and job.attempts == 2 and job.error is None
    assert placement.ordered(job_id) == {3: 2} and peers.product(3)["quantity"] == 998
    placement.assert_settled()


def _submitted_an_hour_ago(placement, job_id):
    """Past its retry deadline (30 min): its next failed attempt is its last."""
    with placement.database.transaction() as session:
        session.execute(update(Job).where(Job.id == job_id).values(created_at=Job.created_at - timedelta(hours=1)))


def test_a_job_past_its_deadline_fails_for_good_with_its_last_error(placement, peers):
    job_id = placement.submit(1, [{"product_id": 3, "quantity": 2}])
    _submitted_an_hour_ago(placement, job_id)
    peers.faults(error_rate=1.0, scope="products")

    outcome = placement.place_while_due()[job_id]

    assert outcome.status == "failed" and outcome.code == "retries_exhausted"
    job = placement.get(job_id)
    assert job.status == "failed" and job.error["details"]["last_error"] == "peer_unavailable"
    assert placement.moves(job_id) == {} and placement.ordered(job_id) is None


def test_a_job_that_gives_up_after_taking_stock_gives_it_back_first(placement, peers):
    job_id = placement.submit(1, [{"product_id": 4, "quantity": 5}])
    placement.place(on_step=stop_at("saving_order", RuntimeError("the order could not be saved")))
    assert peers.product(4)["quantity"] == 995
    _submitted_an_hour_ago(placement, job_id)
    placement.due_now(job_id)

    outcome = placement.place_while_due(stop_at("saving_order", RuntimeError("the order could not be saved")))[job_id]

    assert outcome.status == "failed" and outcome.code == "retries_exhausted"
    assert placement.get(job_id).status == "failed" and placement.ordered(job_id) is None
    assert peers.product(4)["quantity"] == 1000
    assert placement.moves(job_id) == {(4, "take"): (5, APPLIED), (4, "give_back"): (5, APPLIED)}
    placement.assert_settled()


def test_each_job_of_a_batch_has_its_whole_timeline(placement, peers):
    ids = [placement.submit(1, [{"product_id": 2, "quantity": 1}]), placement.submit(2)]

    placement.place()

    with placement.database.transaction() as session:
        timelines = [session.scalars(select(JobEvent.event).where(JobEvent.job_id == job_id)
                                     .order_by(JobEvent.at, JobEvent.id)).all() for job_id in ids]
    assert timelines[0] == ["attempt_started", "checking_stock", "taking_stock", "order_saved"]
    assert timelines[1] == ["attempt_started", "checking_stock", "taking_stock", "order_saved", "cart_closed"]



def test_a_job_giving_back_what_it_took_waits_out_a_broken_catalog_then_gives_it_all_back(placement, peers):
    job_id = placement.submit(1, [{"product_id": 4, "quantity": 5}])
    placement.place(on_step=stop_at("saving_order", RuntimeError("the order could not be saved")))
    _submitted_an_hour_ago(placement, job_id)
    placement.due_now(job_id)
    peers.faults(garbage_rate=1.0, scope="products")  # while it gives up, the catalog answers HTML

    placement.place_while_due(stop_at("saving_order", RuntimeError("the order could not be saved")))
    peers.faults(garbage_rate=0.0)
    placement.due_now(job_id)
    placement.place_while_due()

    assert placement.get(job_id).status == "failed" and placement.ordered(job_id) is None
    assert peers.product(4)["quantity"] == 1000
    assert placement.moves(job_id) == {(4, "take"): (5, APPLIED), (4, "give_back"): (5, APPLIED)}
    placement.assert_settled()

"""Failures stay with the jobs they concern, by class: a peer's value the ledger cannot hold, a value
the database refuses, a bug one job's data trips, and an outage of the database. Against the real
PostgreSQL and the reference peers, placed by a plain call."""
import threading
import time
import uuid

from sqlalchemy import text, update

from models.db import Database, is_outage
from models.inventory import APPLIED
from models.jobs import Job
from models.locks import product_key

BIG = 3_000_000_000  # beyond 32 bits, within what the catalog's contract allows


def _set_items(placement, job_id, items) -> None:
    """The job's resolved items as an earlier version could have kept them (unchecked)."""
    with placement.database.transaction() as session:
        session.execute(update(Job).where(Job.id == job_id).values(items=items))


def test_a_quantity_beyond_32_bits_is_ledgered_and_taken(placement, peers):
    peers.reset(products=[{"id": 90, "quantity": BIG}])
    job_id = placement.submit(1, [{"product_id": 90, "quantity": 2}])

    assert placement.place()[job_id].status == "completed"

    assert peers.product(90)["quantity"] == BIG - 2
    [write] = placement.writes()
    assert (write.state, write.quantity_before, write.quantity_after) == (APPLIED, BIG, BIG - 2)


def test_a_catalog_quantity_the_ledger_cannot_hold_ends_only_the_jobs_that_need_it(placement, peers):
    peers.reset(products=[{"id": 91, "quantity": 2**63}, {"id": 92, "quantity": 100}])
    needs_it = placement.submit(1, [{"product_id": 91, "quantity": 1}, {"product_id": 92, "quantity": 1}])
    fine = placement.submit(2, [{"product_id": 92, "quantity": 1}])

    outcomes = placement.place()

    assert outcomes[fine].status == "completed"
    assert (outcomes[needs_it].status, outcomes[needs_it].code) == ("failed", "bad_peer_response")
    details = placement.get(needs_it).error["details"]
    assert (details["product_id"], details["quantity"]) == (91, 2**63)
    assert peers.product(92)["quantity"] == 99 and peers.product(91)["quantity"] == 2**63


def test_a_value_the_database_refuses_ends_that_job_after_giving_back_and_its_batch_goes_on(placement, peers):
    peers.reset(products=[{"id": 93, "quantity": 2 * BIG}, {"id": 94, "quantity": 100}])
    too_big = placement.submit(1, [{"product_id": 93, "quantity": 1}])
    _set_items(placement, too_big, [{"product_id": 93, "quantity": BIG}])  # an order line is 32-bit
    fine = [placement.submit(c, [{"product_id": 94, "quantity": 1}]) for c in (2, 3)]

    outcomes = placement.place()

    assert {outcomes[job_id].status for job_id in fine} == {"completed"}
    assert peers.product(94)["quantity"] == 98
    # its units were taken before its order could not be saved: they go back before it ends
    assert (outcomes[too_big].status, outcomes[too_big].retry_in) == ("retrying", 0.0)
    assert placement.get(too_big).resolution == "failed"

    outcomes = placement.place()

    assert (outcomes[too_big].status, outcomes[too_big].code) == ("failed", "invalid_items")
    assert peers.product(93)["quantity"] == 2 * BIG


def test_a_bug_one_jobs_data_trips_retries_that_job_and_the_rest_of_its_batch_is_placed(placement, peers):
    tripping = placement.submit(1, [{"product_id": 95, "quantity": 1}])
    _set_items(placement, tripping, [{"product_id": "95", "quantity": 1}])  # no code path expects this
    fine = [placement.submit(c, [{"product_id": 96, "quantity": 1}]) for c in (2, 3)]

    outcomes = placement.place()

    assert {outcomes[job_id].status for job_id in fine} == {"completed"}
    assert (outcomes[tripping].status, outcomes[tripping].code) == ("retrying", "internal_error")
    assert outcomes[tripping].retry_in > 0
    assert placement.get(tripping).status == "retrying"
    assert peers.product(96)["quantity"] == 998


def test_an_unreachable_database_is_an_outage_and_a_refused_value_is_not(database):
    closed = Database("postgresql+psycopg2://postgres@127.0.0.1:1/nothing")
    try:
        with closed.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - classified below
        refused = exc
    closed.dispose()
    assert is_outage(refused)

    with database.engine.connect() as connection:
        try:
            connection.execute(text("SELECT CAST(3000000000 AS integer)"))
        except Exception as exc:  # noqa: BLE001 - classified below
            out_of_range = exc
    assert not is_outage(out_of_range)


def test_a_batch_whose_database_connection_dies_stops_and_its_jobs_come_back_to_its_task(placement, peers, database):
    peers.faults(latency_ms=300, scope="products")
    ids = [placement.submit(c, [{"product_id": 97, "quantity": 1}]) for c in (1, 2)]
    task_id, raised = str(uuid.uuid4()), []

    def execution():
        try:
            placement.place(task_id)
        except Exception as exc:  # noqa: BLE001 - checked below
            raised.append(exc)

    thread = threading.Thread(target=execution)
    thread.start()
    with database.engine.connect() as other:  # PostgreSQL restarting, as the execution sees it: its backend ends
        holder, key = None, product_key(97)
        while holder is None and thread.is_alive():  # the execution holds the product: it is reading it
            holder = other.execute(text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                " AND classid = :high AND objid = :low"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
                {"high": key >> 32, "low": key & 0xFFFFFFFF}).scalar()
            time.sleep(0.01)
        assert holder is not None
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})
    thread.join(60)
    peers.faults(latency_ms=0)

    assert len(raised) == 1 and is_outage(raised[0])
    assert {placement.get(job_id).status for job_id in ids} == {"processing"}

    outcomes = placement.place(task_id)  # the task's retry: its jobs are free again at once

    assert {outcomes[job_id].status for job_id in ids} == {"completed"}
    assert peers.product(97)["quantity"] == 998

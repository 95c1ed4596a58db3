"""The inventory protocol through placed batches: one read and one write per product per batch, a
ledger that settles every write whose answer was lost (applied then answered 503, a worker that died
with its PUT in flight, landed late with or without ETags) so that nothing is lost or doubled, fences,
products another execution holds (`stock_busy`), and units given back."""
import requests

from models.inventory import APPLIED, InventoryMove, StockWrite
from models.jobs import Job
from models.locks import TRY_LOCK, UNLOCK_EVERYTHING, product_key
from models.orders import Order
from tests.placement.harness import stop_at


def test_a_batch_reads_and_writes_each_product_once_for_all_its_jobs(placement, peers):
    ids = [placement.submit(c, [{"product_id": 5, "quantity": 1}, {"product_id": 6, "quantity": c}])
           for c in range(1, 11)]

    outcomes = placement.place()

    assert {outcomes[job_id].status for job_id in ids} == {"completed"}
    stats = peers.stats()
    assert stats["requests"]["get_product"] == 2 and stats["requests"]["put_product"] == 2
    assert stats["writes"] == {"5": 1, "6": 1}
    assert peers.product(5)["quantity"] == 1000 - 10
    assert peers.product(6)["quantity"] == 1000 - sum(range(1, 11))
    assert [(w.product_id, w.quantity_before, w.quantity_after, w.state) for w in placement.writes()] == [
        (5, 1000, 990, APPLIED), (6, 1000, 1000 - sum(range(1, 11)), APPLIED)]
    assert placement.count(InventoryMove, InventoryMove.state == APPLIED) == 20
    assert placement.count(Order) == 10
    placement.assert_settled()


def test_a_put_applied_then_answered_503_inside_a_batch_is_counted_once(placement, peers):
    peers.faults(put_apply_then_error_rate=1.0, scope="products")
    ids = [placement.submit(c, [{"product_id": 60, "quantity": 2}]) for c in range(1, 4)]

    outcomes = placement.place()

    assert {outcomes[job_id].status for job_id in ids} == {"completed"}
    assert peers.product(60)["quantity"] == 1000 - 6
    assert peers.stats()["writes"] == {"60": 1}
    assert [write.state for write in placement.writes()] == [APPLIED]
    assert all(placement.moves(job_id) == {(60, "take"): (2, APPLIED)} for job_id in ids)
    assert placement.count(Order) == 3
    placement.assert_settled()


def _ledgered_take(placement, peers, job_id, product_id: int, quantity: int, state: str, etag: bool = True):
    """The job as an execution leaves it that died after ledgering its take of `quantity` of the
    product (its write and its move `state`), its lease run out: due again. The product as that
    execution read it (the answer to its GET)."""
    product = requests.get(f"{peers.url}/products/{product_id}", timeout=5)
    before = product.json()["quantity"]
    with placement.database.transaction() as session:
        write = StockWrite(product_id=product_id, state=state, quantity_before=before,
                           quantity_after=before - quantity, etag_before=product.headers["ETag"] if etag else None)
        session.add(write)
        session.flush()
        session.add(InventoryMove(job_id=job_id, product_id=product_id, kind="take", quantity=quantity,
                                  state=state, write_id=write.id))
        job = session.get(Job, job_id)
        job.status, job.attempts, job.items = "processing", 1, job.requested_items
    placement.due_now(job_id)
    return product


def _dead_workers_write(placement, peers, product_id: int, quantity: int, etag: bool = True):
    """A pending write as a worker leaves it when it dies right after sending its PUT (its job due
    again), and that PUT, still on its way: a function sending it."""
    dead_job = placement.submit(77, [{"product_id": product_id, "quantity": quantity}])
    product = _ledgered_take(placement, peers, dead_job, product_id, quantity, "pending", etag)
    before = product.json()["quantity"]
    headers = {"If-Match": product.headers["ETag"]} if etag else {}

    def late_put():
        return requests.put(product.url, json={**product.json(), "quantity": before - quantity}, headers=headers,
                            timeout=5)

    return dead_job, before, late_put


def test_a_write_still_in_flight_is_fenced_and_can_never_land(placement, peers):
    dead_job, before, late_put = _dead_workers_write(placement, peers, 30, 2)
    with placement.database.transaction() as session:  # its job is not due: only its write is in the way
        session.get(Job, dead_job).status = "failed"
    new = placement.submit(1, [{"product_id": 30, "quantity": 1}])

    assert placement.place()[new].status == "completed"

    assert late_put().status_code == 412
    assert placement.moves(dead_job) == {(30, "take"): (2, "planned")}
    assert [write.state for write in placement.writes(30)] == ["void", APPLIED]
    assert peers.product(30)["quantity"] == before - 1
    placement.assert_settled()


def test_a_late_put_with_etags_that_landed_first_is_counted_once(placement, peers):
    dead_job, before, late_put = _dead_workers_write(placement, peers, 32, 2)
    assert late_put().status_code == 200  # it lands before the next holder of the product comes

    outcome = placement.place()[dead_job]  # its take is in: it saves the order and writes nothing

    assert outcome.status == "completed" and placement.ordered(dead_job) == {32: 2}
    assert placement.moves(dead_job) == {(32, "take"): (2, APPLIED)}
    assert peers.product(32)["quantity"] == before - 2
    assert peers.stats()["writes"] == {"32": 1}  # the late PUT alone
    placement.assert_settled()


def test_a_late_put_without_etags_that_landed_first_is_counted_once(placement, peers):
    dead_job, before, late_put = _dead_workers_write(placement, peers, 31, 2, etag=False)
    assert late_put().status_code == 200

    outcome = placement.place()[dead_job]

    assert outcome.status == "completed" and placement.ordered(dead_job) == {31: 2}
    assert placement.moves(dead_job) == {(31, "take"): (2, APPLIED)}
    assert peers.product(31)["quantity"] == before - 2
    assert peers.stats()["writes"] == {"31": 1}
    placement.assert_settled()


def test_a_dead_workers_write_that_never_landed_is_fenced_and_its_job_takes_again(placement, peers):
    dead_job, before, late_put = _dead_workers_write(placement, peers, 33, 2)

    outcome = placement.place()[dead_job]

    assert outcome.status == "completed" and placement.ordered(dead_job) == {33: 2}
    assert late_put().status_code == 412  # fenced before the job took again
    assert peers.product(33)["quantity"] == before - 2
    assert [write.state for write in placement.writes(33)] == ["void", APPLIED]
    placement.assert_settled()


def test_a_retry_after_the_stock_was_taken_saves_the_orders_without_writing_again(placement, peers):
    ids = [placement.submit(c, [{"product_id": 70, "quantity": 3}]) for c in range(1, 4)]

    first = placement.place(on_step=stop_at("saving_order", RuntimeError("stopped before the orders were saved")))

    assert {first[job_id].status for job_id in ids} == {"retrying"}
    assert peers.product(70)["quantity"] == 1000 - 9 and placement.count(Order) == 0

    placement.due_now(*ids)
    again = placement.place()

    assert {again[job_id].status for job_id in ids} == {"completed"}
    assert all(placement.ordered(job_id) == {70: 3} for job_id in ids)
    assert peers.product(70)["quantity"] == 1000 - 9
    assert peers.stats()["writes"] == {"70": 1}
    placement.assert_settled()


def test_a_batch_that_cannot_get_its_products_in_time_waits_its_turn_and_holds_nothing(placement, peers):
    job_id = placement.submit(1, [{"product_id": 80, "quantity": 1}, {"product_id": 81, "quantity": 1}])
    with placement.database.engine.connect() as other:
        assert other.execute(TRY_LOCK, {"key": product_key(81)}).scalar()  # another execution's write

        outcome = placement.place(impatient=True)[job_id]

        assert outcome.status == "retrying" and outcome.code == "stock_busy"
        # it got product 80 before it waited for 81: it let it go
        assert other.execute(TRY_LOCK, {"key": product_key(80)}).scalar()
        other.execute(UNLOCK_EVERYTHING)
        other.commit()
    job = placement.get(job_id)
    assert job.status == "retrying" and job.error["code"] == "stock_busy"
    assert peers.product(80)["quantity"] == peers.product(81)["quantity"] == 1000
    assert peers.stats()["requests"]["put_product"] == 0

    placement.due_now(job_id)
    assert placement.place()[job_id].status == "completed"
    assert peers.product(80)["quantity"] == peers.product(81)["quantity"] == 999
    assert placement.ordered(job_id) == {80: 1, 81: 1}
    placement.assert_settled()


def test_a_cancellation_gives_the_orders_units_back(placement, peers):
    placing = placement.submit(1, [{"product_id": 90, "quantity": 4}, {"product_id": 91, "quantity": 1}])
    placement.place()
    order = placement.order_of(placing)

    cancelling = placement.cancel(order.id)
    outcome = placement.place()[cancelling]

    assert outcome.status == "completed"
    assert placement.order_of(placing).status == "Cancelled"
    assert peers.product(90)["quantity"] == peers.product(91)["quantity"] == 1000
    assert placement.moves(placing) == {(90, "take"): (4, APPLIED), (91, "take"): (1, APPLIED),
                                        (90, "give_back"): (4, APPLIED), (91, "give_back"): (1, APPLIED)}
    assert peers.stats()["writes"] == {"90": 2, "91": 2}
    placement.assert_settled()


def test_a_give_back_applied_then_answered_503_is_counted_once(placement, peers):
    placing = placement.submit(1, [{"product_id": 92, "quantity": 4}])
    placement.place()
    cancelling = placement.cancel(placement.order_of(placing).id)
    peers.faults(put_apply_then_error_rate=1.0, scope="products")

    outcome = placement.place()[cancelling]

    assert outcome.status == "completed" and placement.order_of(placing).status == "Cancelled"
    assert peers.product(92)["quantity"] == 1000
    assert peers.stats()["writes"] == {"92": 2}
    assert placement.moves(placing)[(92, "give_back")] == (4, APPLIED)
    placement.assert_settled()


def test_a_job_that_took_part_of_its_stock_and_cannot_have_the_rest_gives_it_back_before_it_is_rejected(
        placement, peers):
    peers.reset(products=[{"id": 10, "quantity": 100}, {"id": 11, "quantity": 0}])
    job_id = placement.submit(1, [{"product_id": 10, "quantity": 4}, {"product_id": 11, "quantity": 1}])
    _earlier_attempt_took(placement, peers, job_id, 10, 4)  # it died before its write of product 11

    outcome = placement.place_while_due()[job_id]  # product 11 ran out meanwhile: it ends, product 10 back

    assert outcome.status == "rejected" and outcome.code == "insufficient_stock"
    assert placement.get(job_id).error["details"]["product_ids"] == [11]
    assert peers.product(10)["quantity"] == 100 and peers.product(11)["quantity"] == 0
    assert placement.moves(job_id) == {(10, "take"): (4, APPLIED), (10, "give_back"): (4, APPLIED)}
    assert placement.ordered(job_id) is None
    placement.assert_settled()


def _earlier_attempt_took(placement, peers, job_id, product_id: int, quantity: int) -> None:
    """The job as an execution leaves it that died after its write of the product landed."""
    product = _ledgered_take(placement, peers, job_id, product_id, quantity, APPLIED)
    requests.put(product.url, json={**product.json(), "quantity": product.json()["quantity"] - quantity},
                 headers={"If-Match": product.headers["ETag"]}, timeout=5).raise_for_status()


def _settle_query_buffers(placement, product_id: int) -> int:
    """Shared buffers the settle step's read of the product's writes touches."""
    from sqlalchemy.dialects import postgresql

    from placement.inventory import WRITES_TO_SETTLE

    query = WRITES_TO_SETTLE.params(product_ids=[product_id], write_ids=[]).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    with placement.database.engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}").scalar()
    return plan[0]["Plan"]["Shared Hit Blocks"] + plan[0]["Plan"]["Shared Read Blocks"]


def _writes_made_and_settled(placement, product_id: int, count: int) -> None:
    """`count` writes of the product, each ledgered pending, then applied (one row version left behind each)."""
    from sqlalchemy import text

    with placement.database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO stock_writes (product_id, state, quantity_before, quantity_after)"
            " SELECT :product, 'pending', 1000, 1000 FROM generate_series(1, :count)"),
            {"product": product_id, "count": count})
    with placement.database.engine.begin() as connection:
        connection.execute(text("UPDATE stock_writes SET state = 'applied' WHERE product_id = :product"),
                           {"product": product_id})


def test_a_held_snapshot_does_not_make_the_settle_step_walk_a_products_history(placement, peers):
    from sqlalchemy import text

    with placement.database.engine.connect() as backup:  # pg_dump's snapshot, held from before the writes
        backup.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ")
        backup.execute(text("SELECT count(*) FROM stock_writes")).scalar()
        _writes_made_and_settled(placement, 33, 3000)
        touched = _settle_query_buffers(placement, 33)
        backup.exec_driver_sql("ROLLBACK")

    # A handful of pages (the index's path to the product's latest write, and that row), not one per
    # write since the snapshot began (the scan for pending writes touched about 80-200 here).
    assert touched <= 20
    job_id = placement.submit(1, [{"product_id": 33, "quantity": 1}])
    assert placement.place()[job_id].status == "completed"

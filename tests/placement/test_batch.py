"""A batch placed by a plain call, against the real PostgreSQL and the reference peers: allocation in
arrival order, all or nothing per job; each job ending on its own (a missing or empty cart, an unknown
product, a broken catalog) while the rest of its batch goes on; carts closed after the orders are saved."""
import threading


from models.inventory import InventoryMove, StockWrite
from models.orders import Order
from placement.batch import Limits


def test_jobs_that_do_not_fit_take_nothing_and_the_rest_are_served_in_arrival_order(placement, peers):
    peers.reset(products=[{"id": 40, "quantity": 5}, {"id": 41, "quantity": 100}])
    first = placement.submit(1, [{"product_id": 40, "quantity": 3}, {"product_id": 41, "quantity": 1}])
    too_many = placement.submit(2, [{"product_id": 40, "quantity": 3}, {"product_id": 41, "quantity": 1}])
    last = placement.submit(3, [{"product_id": 40, "quantity": 2}])

    outcomes = placement.place()

    assert outcomes[first].status == outcomes[last].status == "completed"
    assert outcomes[too_many].status == "rejected" and outcomes[too_many].code == "insufficient_stock"
    refused = placement.get(too_many)
    assert refused.status == "rejected" and refused.error["code"] == "insufficient_stock"
    assert refused.error["details"] == {"product_ids": [40], "available": {"40": 2}}
    assert placement.ordered(first) == {40: 3, 41: 1} and placement.ordered(last) == {40: 2}
    assert placement.ordered(too_many) is None
    assert peers.product(40)["quantity"] == 0 and peers.product(41)["quantity"] == 99
    assert placement.moves(too_many) == {}  # it took nothing, so there is nothing to give back
    assert peers.stats()["writes"] == {"40": 1, "41": 1}
    placement.assert_settled()


def test_once_a_product_runs_out_every_later_job_asking_for_it_is_rejected(placement, peers):
    peers.reset(products=[{"id": 1, "quantity": 4}])
    ids = [placement.submit(customer, [{"product_id": 1, "quantity": 1}]) for customer in range(1, 8)]

    outcomes = placement.place()

    assert [outcomes[job_id].status for job_id in ids] == ["completed"] * 4 + ["rejected"] * 3
    assert {outcomes[job_id].code for job_id in ids[4:]} == {"insufficient_stock"}
    assert placement.count(Order) == 4
    assert peers.product(1)["quantity"] == 0
    placement.assert_settled()


def test_a_job_whose_cart_is_missing_ends_alone_and_its_batch_goes_on(placement, peers):
    no_cart = placement.submit(999)  # the demo data has carts for customers 1-50 only
    from_cart = placement.submit(5)  # its cart: product 6 × 1, product 7 × 2
    from_body = placement.submit(6, [{"product_id": 7, "quantity": 2}])

    outcomes = placement.place()

    assert outcomes[no_cart].status == "rejected" and outcomes[no_cart].code == "cart_not_found"
    assert placement.get(no_cart).error["code"] == "cart_not_found"
    assert outcomes[from_cart].status == outcomes[from_body].status == "completed"
    assert placement.ordered(from_cart) == {6: 1, 7: 2} and placement.ordered(from_body) == {7: 2}
    assert placement.ordered(no_cart) is None
    assert peers.product(6)["quantity"] == 999 and peers.product(7)["quantity"] == 996
    assert peers.cart(5)["status"] == "Ordered"
    placement.assert_settled()


def test_an_empty_cart_rejects_its_job_and_takes_nothing(placement, peers):
    peers.reset(carts=[{"customer_id": 1, "items": [], "status": "Open"}])
    job_id = placement.submit(1)

    outcome = placement.place()[job_id]

    assert outcome.status == "rejected" and outcome.code == "empty_cart"
    assert placement.get(job_id).status == "rejected"
    assert placement.ordered(job_id) is None
    assert placement.count(StockWrite) == placement.count(InventoryMove) == 0
    assert peers.stats()["requests"]["put_product"] == 0
    assert peers.cart(1)["status"] == "Open"


def test_an_unknown_product_rejects_only_the_jobs_that_asked_for_it(placement, peers):
    unknown = placement.submit(1, [{"product_id": 3, "quantity": 1}, {"product_id": 9999, "quantity": 1}])
    fine = placement.submit(2, [{"product_id": 3, "quantity": 1}])

    outcomes = placement.place()

    assert outcomes[unknown].status == "rejected" and outcomes[unknown].code == "unknown_product"
    assert placement.get(unknown).error["details"] == {"product_ids": [9999]}
    assert placement.moves(unknown) == {} and placement.ordered(unknown) is None
    assert outcomes[fine].status == "completed" and placement.ordered(fine) == {3: 1}
    assert peers.product(3)["quantity"] == 999  # the unknown product's job took none of product 3
    placement.assert_settled()


def test_a_catalog_that_answers_garbage_fails_the_job_and_nothing_is_taken(placement, peers):
    peers.faults(garbage_rate=1.0, scope="products")
    job_id = placement.submit(1, [{"product_id": 3, "quantity": 1}])

    outcome = placement.place()[job_id]

    assert outcome.status == "failed" and outcome.code == "bad_peer_response"
    assert placement.get(job_id).error["code"] == "bad_peer_response"
    assert placement.ordered(job_id) is None and placement.moves(job_id) == {}
    peers.faults(garbage_rate=0.0)
    assert peers.product(3)["quantity"] == 1000


def test_two_batches_sharing_hot_products_at_once_never_oversell(placement, peers):
    peers.reset(products=[{"id": 50, "quantity": 15}, {"id": 51, "quantity": 1000}])
    peers.faults(latency_ms=5)  # each batch holds the products over a few peer calls
    ids = [placement.submit(c, [{"product_id": 50, "quantity": 1}, {"product_id": 51, "quantity": 2}])
           for c in range(30)]
    outcomes, errors = {}, []
    both_placing = threading.Barrier(2)

    def execution():
        try:
            both_placing.wait(timeout=10)
            while placed := placement.place():
                outcomes.update(placed)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    placement.limits = Limits(5, placement.limits.lease)  # several batches each
    threads = [threading.Thread(target=execution) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors
    statuses = [outcomes[job_id].status for job_id in ids]
    assert statuses.count("completed") == 15 and statuses.count("rejected") == 15
    assert peers.product(50)["quantity"] == 0
    assert peers.product(51)["quantity"] == 1000 - 2 * 15
    assert placement.count(Order) == 15
    assert len({placement.get(job_id).task_id for job_id in ids}) > 1  # both executions placed some
    placement.assert_settled()


def test_a_cart_is_closed_only_after_its_order_is_saved(placement, peers):
    job_id = placement.submit(5)
    seen_when_closing = []

    def on_step(step):
        if step == "updating_cart":
            seen_when_closing.append((placement.ordered(job_id), peers.cart(5)["status"]))

    outcome = placement.place(on_step=on_step)[job_id]

    assert seen_when_closing == [({6: 1, 7: 2}, "Open")]
    assert outcome.status == "completed"
    assert peers.cart(5)["status"] == "Ordered"
    assert placement.get(job_id).cart_status == "closed"
    placement.assert_settled()


def test_a_cart_that_cannot_be_closed_yet_is_closed_later_and_its_order_stands(placement, peers):
    job_id = placement.submit(5)

    def cart_service_down(step):
        if step == "updating_cart":
            peers.faults(error_rate=1.0, scope="carts")

    outcome = placement.place(on_step=cart_service_down)[job_id]

    assert outcome.status == "completed"
    job = placement.get(job_id)
    assert job.status == "completed" and job.cart_status == "pending"  # to be closed later
    assert placement.ordered(job_id) == {6: 1, 7: 2}
    assert peers.cart(5)["status"] == "Open"

    peers.faults(error_rate=0.0)
    placement.due_now(job_id)
    assert placement.place()[job_id].status == "completed"

    assert peers.cart(5)["status"] == "Ordered"
    assert placement.get(job_id).cart_status == "closed"
    assert placement.count(Order) == 1 and placement.ordered(job_id) == {6: 1, 7: 2}
    assert peers.stats()["writes"] == {"6": 1, "7": 1}  # closing the cart later wrote no stock again
    assert peers.product(7)["quantity"] == 998
    placement.assert_settled()


def test_a_cart_the_peer_refuses_to_close_leaves_the_order_standing(placement, peers):
    job_id = placement.submit(5)

    def cart_service_refuses(step):
        if step == "updating_cart":
            peers.faults(error_rate=1.0, error_status=400, scope="carts")

    outcome = placement.place(on_step=cart_service_refuses)[job_id]

    assert outcome.status == "completed"
    job = placement.get(job_id)
    assert job.status == "completed" and job.cart_status == "failed" and job.error is None
    assert placement.ordered(job_id) == {6: 1, 7: 2}
    assert peers.product(6)["quantity"] == 999
    assert placement.place() == {}  # nothing left to do for it
    placement.assert_settled()


def test_units_a_cancellation_gives_back_serve_the_jobs_that_arrived_after_it(placement, peers):
    peers.reset(products=[{"id": 20, "quantity": 1}])
    first = placement.submit(1, [{"product_id": 20, "quantity": 1}])
    placement.place()
    cancelling = placement.cancel(placement.order_of(first).id)
    after_it = placement.submit(2, [{"product_id": 20, "quantity": 1}])  # in the same batch, after it

    outcomes = placement.place()

    assert outcomes[cancelling].status == "completed"
    assert outcomes[after_it].status == "completed", outcomes[after_it]
    assert peers.product(20)["quantity"] == 0

"""Imports against the real worker: an import does not starve the checkout (single orders submitted while
it is placed complete before its last line), and a second import interleaves with a running one instead
of waiting behind it. Times come from the jobs' timelines; no bound on them is asserted."""
from __future__ import annotations

import time
from datetime import datetime

import pytest
from sqlalchemy import text

LINES = 1000
# Every line and every single order takes a product of its own: no two jobs wait for each other's stock,
# so the order they end in is the order they were claimed in (a job retried after waiting for a product
# is due again later, behind the others).
PRODUCTS = [{"id": n, "name": f"Product {n}", "price": 1.0, "quantity": 5} for n in range(1, 2 * LINES + 1)]


@pytest.fixture()
def stocked(peers):
    peers.reset(products=PRODUCTS)


def _lines(count: int, first_product: int) -> list[dict]:
    return [{"customer_id": 1 + n % 50, "items": [{"product_id": first_product + n, "quantity": 1}]}
            for n in range(count)]


def _import(api, count: int, first_product: int) -> str:
    answer = api.post("/imports", json={"orders": _lines(count, first_product)})
    assert answer.status_code == 202, answer.text
    return answer.json()["import_id"]


def _done(api, import_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = api.http.get(f"{api.url}/imports/{import_id}", headers={"Prefer": "wait=10"}, timeout=20).json()
        if state["done"]:
            return state
    raise AssertionError(f"import {import_id} not done after {timeout}s: {state['counts']}")


def _ended(engine, where: str, **params) -> list[datetime]:
    """When each job picked by `where` ended (its last timeline event), earliest first."""
    with engine.connect() as connection:
        query = f"SELECT max(e.at) AS ended FROM jobs j JOIN job_events e ON e.job_id = j.id WHERE {where}"  # noqa: S608
        return list(connection.scalars(text(query + " GROUP BY j.id ORDER BY ended"), params))


def _started(engine, import_id: str) -> None:
    """Wait until the import's first line's job ended: the import is being placed."""
    for _ in range(600):
        if _ended(engine, "j.import_id = :id AND j.status = 'completed'", id=import_id):
            return
        time.sleep(0.05)
    raise AssertionError("the import never started")


def test_single_orders_submitted_during_an_import_are_placed_before_most_of_its_lines(api, engine, stocked):
    import_id = _import(api, LINES, first_product=101)
    _started(engine, import_id)

    singles = [api.post(f"/customers/{c}/orders", json={"items": [{"product_id": c, "quantity": 1}]}).json()["job_id"]
               for c in range(1, 11)]
    placed = [api.wait(job_id) for job_id in singles]
    _done(api, import_id)

    assert [job["status"] for job in placed] == ["completed"] * len(singles)
    import_ended = _ended(engine, "j.import_id = :id", id=import_id)
    singles_ended = _ended(engine, "j.import_id IS NULL")
    placing = [(api.get(f"/jobs/{job_id}/events").json()["events"], job_id) for job_id in singles]
    seconds = sorted(round((datetime.fromisoformat(events[-1]["at"]) - datetime.fromisoformat(events[0]["at"]))
                           .total_seconds(), 3) for events, _ in placing)
    after = sum(ended > singles_ended[-1] for ended in import_ended)
    assert len(import_ended) == LINES
    # Behind the import, the single orders would end after nearly all of its lines (all but retried ones).
    print(f"single orders placed in {seconds} s; {after} lines of the import ended after them")
    assert after > LINES // 2, f"single orders placed in {seconds} s; {after} lines of the import ended after them"


def test_a_second_import_interleaves_with_a_running_one(api, engine, stocked):
    first = _import(api, LINES, first_product=1)
    _started(engine, first)

    second = _import(api, LINES // 5, first_product=LINES + 1)
    _done(api, first), _done(api, second)

    first_ended = _ended(engine, "j.import_id = :id", id=first)
    second_ended = _ended(engine, "j.import_id = :id", id=second)
    assert len(first_ended) == LINES and len(second_ended) == LINES // 5
    # Behind the first import, the second's lines would end after nearly all of the first's.
    after = sum(ended > second_ended[-1] for ended in first_ended)
    print(f"{after} lines of the first import ended after the second import's last one")
    assert after > LINES // 4, f"{after} lines of the first import ended after the second's last one"

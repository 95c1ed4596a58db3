"""Retention on the real PostgreSQL (a database of the module's own): old finished jobs go with their
timeline, ledger and webhook rows; young, unfinished and pending ones stay, and orders always stay."""
import json
import uuid

import pytest
from sqlalchemy import column, func, select, table, text

from models.db import Database
from models.locks import RETENTION_LOCK_KEY
from observability import metrics
from tasks import retention
from tasks.retention import prune

OLD, YOUNG = 40, 1  # days


@pytest.fixture()
def db(database_url, engine):
    """The module's database (every table emptied: the `engine` fixture) as a worker holds it."""
    database = Database(database_url)
    yield database
    database.dispose()


class Rows:
    """Rows as the service leaves them, written `days` ago."""

    def __init__(self, engine):
        self.engine = engine

    def run(self, sql: str, **params):
        with self.engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None

    def job(self, days: int, status: str = "completed", cart_status: str = "not_needed", kind: str = "place",
            replay_of=None, cancels_order_id=None) -> uuid.UUID:
        job_id = uuid.uuid4()
        self.run("INSERT INTO jobs (id, customer_id, status, kind, source, attempts, cart_status, replay_of,"
                 " cancels_order_id, created_at, updated_at) VALUES (:id, 7, :status, :kind, 'body', 1, :cart,"
                 " :replay_of, :cancels, now() - make_interval(days => :days), now() - make_interval(days => :days))",
                 id=job_id, status=status, kind=kind, cart=cart_status, replay_of=replay_of, cancels=cancels_order_id,
                 days=days)
        self.run("INSERT INTO job_events (job_id, at, event, status, attempt) VALUES"
                 " (:id, now() - make_interval(days => :days), :status, :status, 1)", id=job_id, status=status,
                 days=days)
        return job_id

    def order(self, job_id) -> int:
        order_id = self.run("INSERT INTO orders (customer_id, status, job_id) VALUES (7, 'Ordered', :job_id)"
                            " RETURNING id", job_id=job_id)
        self.run("INSERT INTO order_items (order_id, product_id, quantity) VALUES (:id, 1, 2)", id=order_id)
        return order_id

    def write(self, days: int, state: str = "applied") -> int:
        return self.run("INSERT INTO stock_writes (product_id, state, quantity_before, quantity_after, created_at,"
                        " updated_at) VALUES (1, :state, 10, 8, now() - make_interval(days => :days),"
                        " now() - make_interval(days => :days)) RETURNING id", state=state, days=days)

    def move(self, job_id, write_id, state: str = "applied") -> int:
        return self.run("INSERT INTO inventory_moves (job_id, product_id, kind, quantity, state, write_id)"
                        " VALUES (:job_id, 1, 'take', 2, :state, :write_id) RETURNING id",
                        job_id=job_id, write_id=write_id, state=state)

    def delivery(self, job_id, status: str = "delivered") -> uuid.UUID:
        delivery_id = uuid.uuid4()
        self.run("INSERT INTO webhook_deliveries (id, job_id, event, url, payload, status) VALUES"
                 " (:id, :job_id, 'job.completed', 'http://127.0.0.1:1/hook', CAST(:payload AS jsonb), :status)",
                 id=delivery_id, job_id=job_id, payload=json.dumps({"id": str(delivery_id)}), status=status)
        self.run("INSERT INTO webhook_attempts (delivery_id, number, status_code, duration_ms)"
                 " VALUES (:id, 1, 204, 3)", id=delivery_id)
        return delivery_id

    def count(self, name: str, key: str, value) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(table(name)).where(column(key) == value))

    def jobs(self) -> set:
        with self.engine.connect() as connection:
            return set(connection.execute(text("SELECT id FROM jobs")).scalars())


@pytest.fixture()
def rows(engine, db, monkeypatch):
    monkeypatch.setattr(retention, "_resume", retention._Resume())  # as a worker that just started
    return Rows(engine)


def _pruned_total(table: str) -> float:
    return metrics.rows_pruned.labels(table)._value.get()


def test_old_finished_jobs_go_with_their_rows_and_their_orders_stay(db, rows):
    placed = rows.job(OLD)
    order_id = rows.order(placed)
    write = rows.write(OLD)
    rows.move(placed, write)
    delivery = rows.delivery(placed)
    ended = [rows.job(OLD, status) for status in ("rejected", "failed", "cancelled")]
    closed = rows.job(OLD, cart_status="closed")
    orphan_write = rows.write(OLD, "void")  # its moves were sent again by another write
    before = {table: _pruned_total(table) for table in ("jobs", "job_events", "stock_writes", "webhook_attempts")}

    pruned = prune(db, 30, batch=2)

    assert rows.jobs() == set()
    assert pruned == {"jobs": 5, "job_events": 5, "inventory_moves": 1, "webhook_deliveries": 1,
                      "webhook_attempts": 1, "stock_writes": 2}
    assert (rows.count("stock_writes", "id", write), rows.count("stock_writes", "id", orphan_write)) == (0, 0)
    assert rows.count("webhook_attempts", "delivery_id", delivery) == 0
    assert rows.count("orders", "job_id", placed) == 1 and rows.count("order_items", "order_id", order_id) == 1
    assert {table: _pruned_total(table) - before[table] for table in before} == {
        "jobs": 5, "job_events": 5, "stock_writes": 2, "webhook_attempts": 1}
    assert ended and closed


def test_young_unfinished_and_pending_rows_stay(db, rows):
    young = rows.job(YOUNG)
    unfinished = [rows.job(OLD, status) for status in ("queued", "processing", "retrying")]
    cart_to_close = rows.job(OLD, cart_status="pending")
    cart_failed = rows.job(OLD, cart_status="failed")
    pending_move = rows.job(OLD, "failed")
    pending_write = rows.write(OLD, "pending")
    rows.move(pending_move, pending_write, "pending")
    pending_delivery = rows.job(OLD)
    rows.delivery(pending_delivery, "pending")
    cancelled_order = rows.job(OLD)  # its cancellation still runs: it gives back this job's ledger
    cancellation = rows.job(YOUNG, "queued", kind="cancel", cancels_order_id=rows.order(cancelled_order))
    young_write = rows.write(YOUNG, "void")

    assert prune(db, 30, batch=2) == {}
    assert rows.jobs() == {young, *unfinished, cart_to_close, cart_failed, pending_move, pending_delivery,
                           cancelled_order, cancellation}
    assert rows.count("stock_writes", "id", pending_write) == 1 and rows.count("stock_writes", "id", young_write) == 1


def test_a_replay_outlives_the_job_it_replays_and_both_old_go_together(db, rows):
    failed = rows.job(OLD, "failed")
    replay = rows.job(YOUNG, "queued", replay_of=failed)
    old_failed = rows.job(OLD, "failed")
    old_replay = rows.job(OLD, "completed", replay_of=old_failed)

    assert prune(db, 30, batch=500)["jobs"] == 3
    assert rows.jobs() == {replay}
    assert rows.run("SELECT replay_of FROM jobs WHERE id = :id", id=replay) is None
    assert old_replay not in rows.jobs()


def test_zero_days_keeps_everything(db, rows):
    old = rows.job(365)
    assert prune(db, 0, batch=500) == {}
    assert rows.jobs() == {old}


def test_one_worker_prunes_at_a_time(db, rows, engine):
    old = rows.job(OLD)
    with engine.connect() as other:
        assert other.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": RETENTION_LOCK_KEY}).scalar()
        assert prune(db, 30, batch=500) == {}
        other.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RETENTION_LOCK_KEY})
    assert rows.jobs() == {old}
    assert prune(db, 30, batch=500)["jobs"] == 1


def test_a_pass_starts_where_the_last_stopped_and_now_and_then_from_the_oldest_row(db, rows, monkeypatch):
    kept = rows.job(OLD + 1)
    delivery = rows.delivery(kept, "pending")  # not yet: its delivery is still to be sent
    pruned = rows.job(OLD)
    assert prune(db, 30, batch=500) == {"jobs": 1, "job_events": 1}
    rows.run("UPDATE webhook_deliveries SET status = 'delivered' WHERE id = :id", id=delivery)
    assert prune(db, 30, batch=500) == {}  # the next pass starts after `pruned`
    assert rows.jobs() == {kept}
    monkeypatch.setattr(retention._resume, "passes", retention.RESTART_EVERY - 1)
    assert prune(db, 30, batch=500)["jobs"] == 1
    assert pruned not in rows.jobs() and rows.jobs() == set()

"""The chaos run: many clients, misbehaving peers, killed workers, a broker outage, then every invariant checked.

    python -m bench.chaos                      # full run: 2,000 orders, 32 clients, Redis, 2 workers
    python -m bench.chaos --broker rabbitmq    # the same against RabbitMQ (a vhost of its own)
    python -m bench.chaos --workers 4          # with 4 worker processes
    python -m bench.chaos --broker rabbitmq-cluster   # a 3-node RabbitMQ cluster; a node is stopped and started
    python -m bench.chaos --own-postgres       # on a PostgreSQL server of its own, not DATABASE_URL's
    python -m bench.chaos --sale 100 --orders 500   # a flash sale: 500 customers, 100 units of one product

It starts its own stack through `devstack.stack.Stack` (a fresh database, its own broker — a
Redis restarted without persistence, a RabbitMQ vhost whose connections are cut, or a 3-node
RabbitMQ cluster of its own (`devstack.cluster`) one of whose nodes is stopped and started — the
reference peers, the API under gunicorn and --workers worker processes), drives it, heals the faults,
waits for every job to end and checks the invariants from PostgreSQL and the
peers' own state. Exit status 0 only when no invariant is broken.
"""
from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from bench.conclude import conclude
from devstack.brokers import BROKERS
from devstack.cluster import RabbitCluster
from devstack.postgres import PrivatePostgres
from devstack.stack import Stack
from devstack.tokens import token

ROOT = Path(__file__).resolve().parent.parent
HOT_PRODUCTS = range(1, 6)
COLD_PRODUCTS = range(6, 41)
CART_CUSTOMERS = range(10_001, 10_401)
SALE_PRODUCT, FIRST_SALE_CUSTOMER = 1, 20_001
# The stack's fast clocks (devstack.stack.FAST_CLOCKS), but for what a long run under faults needs:
# the faults stay on for the whole load, so a job keeps retrying for as long as production allows
# (JOB_RETRY_DEADLINE_SECONDS, well past the run) instead of the tests' few seconds; thousands of
# orders queue at once, so a queued job waits longer before the sweeper sends it again; the clients
# are a few tokens sending thousands of orders; the catalog starts empty (the run sets its own).
CHAOS_SETTINGS = {"JOB_RETRY_DEADLINE_SECONDS": "1800", "DISPATCH_DEADLINE_SECONDS": "5",
                  "RATE_LIMIT": "100000 per second", "REFPEERS_SEED": "empty"}


def _catalog(hot_stock: int) -> list[dict]:
    return ([{"id": p, "name": f"Hot {p}", "price": 9.5, "quantity": hot_stock} for p in HOT_PRODUCTS]
            + [{"id": p, "name": f"Product {p}", "price": 3.0, "quantity": 100_000} for p in COLD_PRODUCTS])


def _carts(rng: random.Random) -> list[dict]:
    return [{"customer_id": c, "status": "Open",
             "items": [{"product_id": rng.choice(HOT_PRODUCTS), "quantity": rng.randint(1, 2)},
                       {"product_id": rng.choice(COLD_PRODUCTS), "quantity": 1}]} for c in CART_CUSTOMERS]


def _sale(stock: int, customers: int) -> tuple[list[dict], list[dict]]:
    """The flash sale's catalog and carts: one product, each customer wanting one unit of it."""
    return ([{"id": SALE_PRODUCT, "name": "Flash sale", "price": 9.5, "quantity": stock}],
            [{"customer_id": FIRST_SALE_CUSTOMER + i, "status": "Open",
              "items": [{"product_id": SALE_PRODUCT, "quantity": 1}]} for i in range(customers)])


class Run:
    """One chaos run and what it observed."""

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        # Unique even for runs started in the same second (the test suite runs several at once).
        self.log_dir = ROOT / "test-artifacts" / "chaos" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.faults = Counter()
        self.responses: list[dict] = []
        self.key_answers: dict[str, set] = {}
        self.cancel_answers: dict[int, set] = {}
        self.lock = threading.Lock()
        self.stack: Stack | None = None
        self.cluster: RabbitCluster | None = None
        self.postgres: PrivatePostgres | None = None
        self.exited: set[str] = set()

    # -- the stack -------------------------------------------------------------------------
    def start(self) -> None:
        broker = self.args.broker
        if broker == RabbitCluster.kind:
            self.cluster = broker = RabbitCluster(self.log_dir)
        self.stack = Stack(self.log_dir, broker=broker, settings=CHAOS_SETTINGS)
        if self.args.own_postgres:
            self.postgres = PrivatePostgres(self.log_dir)
            self.stack.base_database_url = self.postgres.url
        self.stack.start(workers=self.args.workers, concurrency=self.args.concurrency)
        self.broker, self.database_url = self.stack.broker, self.stack.database_url
        self.peers_url, self.api_url, self.workers = self.stack.peers_url, self.stack.api_url, self.stack.workers
        self.auth = {"Authorization": f"Bearer {token()}"}
        if self.args.sale:
            self.initial, carts = _sale(self.args.sale, self.args.orders)
        else:
            self.initial, carts = _catalog(self.args.hot_stock), _carts(self.rng)
        self.carts = {c["customer_id"]: c for c in carts}
        requests.post(f"{self.peers_url}/admin/reset", json={"products": self.initial, "carts": carts},
                      timeout=10).raise_for_status()

    def stop(self) -> None:
        """Stop whatever `start` got to start, the broker (a RabbitMQ vhost or cluster) and the database included."""
        try:
            if self.stack is not None:
                self.stack.stop()
        finally:
            try:
                if self.cluster is not None:
                    self.cluster.stop()
            finally:
                if self.postgres is not None:
                    self.postgres.stop()

    def set_faults(self, **faults) -> None:
        requests.put(f"{self.peers_url}/admin/faults", json=faults, timeout=10).raise_for_status()

    # -- load ------------------------------------------------------------------------------
    def _order(self, index: int) -> tuple[int, dict | None, str | None, int]:
        rng = random.Random(self.args.seed * 1_000_003 + index)
        if self.args.sale:  # each customer orders its cart once; some send it twice with a key
            key = f"chaos-{uuid.uuid4()}" if rng.random() < 0.1 else None
            return FIRST_SALE_CUSTOMER + index, None, key, 2 if key else 1
        if index < len(CART_CUSTOMERS) and index % 3 == 0:
            return CART_CUSTOMERS[index], None, None, 1  # order the cart, once per cart customer
        items = [{"product_id": rng.choice(HOT_PRODUCTS), "quantity": rng.randint(1, 3)}]
        if rng.random() < 0.6:
            items.append({"product_id": rng.choice(COLD_PRODUCTS), "quantity": rng.randint(1, 2)})
        key = f"chaos-{uuid.uuid4()}" if rng.random() < 0.1 else None
        return 1 + index % 5000, {"items": items}, key, 2 if key else 1

    def _submit(self, index: int) -> None:
        customer, body, key, times = self._order(index)
        headers = {**self.auth, **({"Idempotency-Key": key} if key else {})}
        for _ in range(times):
            for attempt in range(20):  # a client retries a refused connection, as a real one would
                try:
                    response = requests.post(f"{self.api_url}/orders/{customer}", json=body, headers=headers,
                                             timeout=10)
                    break
                except requests.RequestException:
                    time.sleep(0.2 * (attempt + 1))
            else:
                raise RuntimeError("API unreachable")
            record = {"status": response.status_code, "customer": customer, "key": key,
                      "job_id": response.json().get("job_id"), "cart": body is None}
            with self.lock:
                self.responses.append(record)
                if key:
                    self.key_answers.setdefault(key, set()).add(record["job_id"])

    def _orders_to_cancel(self) -> list[int]:
        """The first orders placed, once there are enough of them (the faults are still on while they
        are cancelled; orders are placed in batches, so the first ones may take a moment)."""
        deadline = time.monotonic() + 60
        while True:
            response = requests.get(f"{self.api_url}/orders", params={"page_size": 100}, headers=self.auth,
                                    timeout=10)
            orders = [order["id"] for order in response.json()["orders"]]
            if len(orders) >= self.args.cancels or time.monotonic() > deadline:
                return orders[: self.args.cancels]
            time.sleep(0.5)

    def _cancel(self, order_id: int) -> None:
        for _ in range(2):  # asked twice: the second answer must be the same job
            response = requests.post(f"{self.api_url}/orders/{order_id}/cancel", headers=self.auth, timeout=10)
            with self.lock:
                self.cancel_answers.setdefault(order_id, set()).add((response.status_code, response.json().get("job_id")))

    def _chaos(self, stop: threading.Event) -> None:
        kills, outages = 0, 0
        pause = self.args.chaos_interval
        while not stop.wait(pause):
            self._note_exits()  # before a kill restarts its victim
            # A sale is decided within seconds: its broker outage comes first, while orders still arrive.
            outage_first = self.args.sale and outages < self.args.broker_outages
            if kills < self.args.kills and not outage_first:
                victim = self.rng.choice(self.workers)
                victim.kill()
                self.faults["worker_sigkill"] += 1
                kills += 1
                victim.start()
                victim.wait_for_log("ready.", timeout=60)
            elif outages < self.args.broker_outages:
                with self.broker.outage():
                    self.faults["broker_outage"] += 1
                    outages += 1
                    time.sleep(1)

    def _note_exits(self) -> None:
        """Count every worker that exited on its own. Nothing restarts it: such an exit is a failure
        of the run (as the Redis teardown crash that tasks/transport.py fixes was)."""
        self.exited.update(worker.name for worker in self.workers if not worker.alive())

    def drive(self) -> float:
        # A sale writes its one product once per batch, and only while it has stock: a dozen or two writes
        # in all. Half of them answer 503 once applied, so that the run cannot end without that fault.
        self.set_faults(error_rate=0.10, put_apply_then_error_rate=0.5 if self.args.sale else 0.05, hang_rate=0.02,
                        hang_seconds=1.5, scope="all")
        stop = threading.Event()
        chaos = threading.Thread(target=self._chaos, args=(stop,), daemon=True)
        started = time.monotonic()
        chaos.start()
        with ThreadPoolExecutor(self.args.clients) as pool:
            list(pool.map(self._submit, range(self.args.orders)))
            # No cancellation in a sale: each would give its unit back to the customers still waiting.
            list(pool.map(self._cancel, [] if self.args.sale else self._orders_to_cancel()))
        # Keep the chaos going until every planned fault has happened.
        while chaos.is_alive() and (self.faults["worker_sigkill"] < self.args.kills
                                    or self.faults["broker_outage"] < self.args.broker_outages):
            time.sleep(0.2)
        stop.set()
        chaos.join()
        self.set_faults(error_rate=0, put_apply_then_error_rate=0, hang_rate=0)
        return time.monotonic() - started

    def wait_for_all(self, engine) -> float:
        started = time.monotonic()
        while time.monotonic() - started < self.args.settle_timeout:
            with engine.connect() as connection:
                unfinished = connection.execute(text(
                    "SELECT count(*) FROM jobs WHERE status IN ('queued','processing','retrying')"
                    " OR cart_status = 'pending'")).scalar()
            self._note_exits()
            if unfinished == 0:
                break
            time.sleep(0.2)
        return time.monotonic() - started

    # -- invariants ------------------------------------------------------------------------
    def check(self, engine) -> dict:
        state = requests.get(f"{self.peers_url}/admin/state", timeout=10).json()
        stats = requests.get(f"{self.peers_url}/admin/stats", timeout=10).json()
        connection = engine.connect()

        def q(sql):
            return connection.execute(text(sql)).all()

        jobs = dict(q("SELECT status, count(*) FROM jobs WHERE kind = 'place' GROUP BY status"))
        cancels = dict(q("SELECT status, count(*) FROM jobs WHERE kind = 'cancel' GROUP BY status"))
        cancelled_with_stock_out = q(
            "SELECT count(*) FROM orders o WHERE o.status = 'Cancelled' AND EXISTS (SELECT 1 FROM inventory_moves m"
            " WHERE m.job_id = o.job_id AND m.state = 'applied' GROUP BY m.job_id"
            " HAVING sum(CASE WHEN m.kind = 'take' THEN m.quantity ELSE -m.quantity END) <> 0)")[0][0]
        stuck = q("SELECT count(*) FROM jobs WHERE status IN ('queued','processing','retrying')")[0][0]
        duplicate_orders = q("SELECT count(*) FROM (SELECT job_id FROM orders GROUP BY job_id HAVING count(*) > 1) d")[0][0]
        orders_not_completed = q("SELECT count(*) FROM orders o JOIN jobs j ON j.id = o.job_id"
                                 " WHERE j.status <> 'completed'")[0][0]
        completed_without_order = q("SELECT count(*) FROM jobs j LEFT JOIN orders o ON o.job_id = j.id"
                                    " WHERE j.kind = 'place' AND j.status = 'completed' AND o.id IS NULL")[0][0]
        empty_orders = q("SELECT count(*) FROM orders o WHERE NOT EXISTS"
                         " (SELECT 1 FROM order_items i WHERE i.order_id = o.id)")[0][0]
        sold = dict(q("SELECT i.product_id, sum(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id"
                      " JOIN jobs j ON j.id = o.job_id WHERE j.status = 'completed' AND o.status = 'Ordered'"
                      " GROUP BY i.product_id"))
        net_unfinished = q("SELECT count(*) FROM (SELECT m.job_id FROM inventory_moves m JOIN jobs j ON j.id = m.job_id"
                           " WHERE j.status IN ('rejected','failed') AND m.state = 'applied'"
                           " GROUP BY m.job_id HAVING sum(CASE WHEN m.kind = 'take' THEN m.quantity ELSE -m.quantity END) <> 0) x")[0][0]
        pending_moves = q("SELECT count(*) FROM inventory_moves WHERE state = 'pending'")[0][0]
        pending_writes = q("SELECT count(*) FROM stock_writes WHERE state = 'pending'")[0][0]
        ledger = self._ledger_mismatches(q, state, stats)
        outcome = self._sale_report(q, state, jobs) if self.args.sale else \
            {"units_sold_hot": {str(p): sold.get(p, 0) for p in HOT_PRODUCTS}}
        mismatches, oversold = [], 0
        for product in self.initial:
            final = state["products"][str(product["id"])]["quantity"]
            taken = product["quantity"] - final
            if final < 0:
                oversold += -final
            if taken != sold.get(product["id"], 0):
                mismatches.append({"product_id": product["id"], "catalog_taken": taken,
                                   "completed_orders": sold.get(product["id"], 0)})
        cart_jobs = {row[0]: row[1] for row in q(
            "SELECT customer_id, bool_or(status = 'completed') FROM jobs WHERE source = 'cart' GROUP BY customer_id")}
        cart_mismatch = sum(
            1 for customer, completed in cart_jobs.items()
            if (state["carts"][str(customer)]["status"] == "Ordered") != completed)
        keys_with_many_jobs = sum(1 for jobs_seen in self.key_answers.values() if len(jobs_seen) != 1)
        cancel_answers_differing = sum(1 for answers in self.cancel_answers.values() if len(answers) != 1)
        connection.close()
        accepted = sum(1 for r in self.responses if r["status"] == 202)
        return {
            "orders_submitted": self.args.orders,
            "requests_sent": len(self.responses),
            "accepted_202": accepted,
            "non_202_answers": len(self.responses) - accepted,
            "jobs": sum(jobs.values()),
            "completed": jobs.get("completed", 0),
            "rejected": jobs.get("rejected", 0),
            "failed": jobs.get("failed", 0),
            "jobs_stuck": stuck,
            "duplicate_orders": duplicate_orders,
            "idempotency_keys_with_other_jobs": keys_with_many_jobs,
            "orders_of_unfinished_jobs": orders_not_completed,
            "completed_without_order": completed_without_order,
            "orders_without_items": empty_orders,
            "units_oversold": oversold,
            "inventory_mismatches": len(mismatches),
            "mismatch_detail": mismatches,
            "failed_jobs_with_net_stock_effect": net_unfinished,
            "cancellations_requested": len(self.cancel_answers),
            "cancellations_completed": cancels.get("completed", 0),
            "cancellations_unfinished": sum(v for k, v in cancels.items() if k != "completed"),
            "cancel_requests_with_other_answers": cancel_answers_differing,
            "cancelled_orders_with_stock_out": cancelled_with_stock_out,
            "pending_ledger_rows": pending_moves + pending_writes,
            "cart_status_mismatches": cart_mismatch,
            "ledger_mismatches": len(ledger),
            "ledger_mismatch_detail": ledger,
            **outcome,
            "faults_injected": {**stats.get("faults", {}), **self.faults},
            "worker_exits": len(self.exited),
            **(self._cluster_report() if self.cluster is not None else {}),
        }

    def _ledger_mismatches(self, q, state: dict, stats: dict) -> list[dict]:
        """The products whose ledger disagrees with the catalog (the applied moves' net change against
        what the catalog lost) or with the peer's own count of applied writes: each of the ledger's
        applied writes, and at most one fence per void write (placement.inventory._settle writes the
        unchanged quantity back to make sure a write whose answer was lost can never land)."""
        moved = dict(q("SELECT product_id, sum(CASE WHEN kind = 'take' THEN quantity ELSE -quantity END)"
                       " FROM inventory_moves WHERE state = 'applied' GROUP BY product_id"))
        writes = {p: (applied, void) for p, applied, void in q(
            "SELECT product_id, count(*) FILTER (WHERE state = 'applied'), count(*) FILTER (WHERE state = 'void')"
            " FROM stock_writes GROUP BY product_id")}
        peer_writes = stats.get("writes", {})
        out = []
        for product in self.initial:
            p = product["id"]
            taken = product["quantity"] - state["products"][str(p)]["quantity"]
            applied, void = writes.get(p, (0, 0))
            if moved.get(p, 0) != taken or not applied <= peer_writes.get(str(p), 0) <= applied + void:
                out.append({"product_id": p, "catalog_taken": taken, "ledger_moves_net": moved.get(p, 0),
                            "ledger_writes_applied": applied, "ledger_writes_void": void,
                            "peer_writes": peer_writes.get(str(p), 0)})
        return out

    def _sale_report(self, q, state: dict, jobs: dict) -> dict:
        """A flash sale's own outcome: exactly the stock placed, every other order rejected for want of
        stock, nothing left in the catalog."""
        reasons = dict(q("SELECT coalesce(error->>'code', ''), count(*) FROM jobs"
                         " WHERE kind = 'place' AND status = 'rejected' GROUP BY 1"))
        return {"sale_stock": self.args.sale,
                "sale_placed_other_than_stock": abs(jobs.get("completed", 0) - self.args.sale),
                "sale_rejections_not_insufficient_stock": sum(n for code, n in reasons.items()
                                                              if code != "insufficient_stock"),
                "sale_stock_left": state["products"][str(SALE_PRODUCT)]["quantity"]}

    def _cluster_report(self) -> dict:
        """After the node stopped mid-run is back: every node runs, every quorum queue has a member on each."""
        members = self.cluster.queue_members()
        return {"cluster_nodes_running": len(self.cluster.running_nodes()),
                "quorum_queue_members": {queue: len(nodes) for queue, nodes in members.items()},
                "quorum_queues_short_of_members": sum(1 for nodes in members.values()
                                                      if len(nodes) < len(self.cluster.nodes))}


# A failed job is one too: the faults are transient, and a job retries them until its deadline (30 minutes).
VIOLATIONS = ("failed", "jobs_stuck", "duplicate_orders", "idempotency_keys_with_other_jobs", "orders_of_unfinished_jobs",
              "completed_without_order", "orders_without_items", "units_oversold", "inventory_mismatches",
              "failed_jobs_with_net_stock_effect", "pending_ledger_rows", "cart_status_mismatches",
              "non_202_answers", "cancellations_unfinished", "cancel_requests_with_other_answers",
              "cancelled_orders_with_stock_out", "worker_exits", "quorum_queues_short_of_members", "ledger_mismatches",
              "sale_placed_other_than_stock", "sale_rejections_not_insufficient_stock", "sale_stock_left")


def run(args) -> dict:
    """Start, drive, settle, check, stop; returns the report."""
    chaos = Run(args)
    try:
        chaos.start()
        load_seconds = chaos.drive()
        engine = create_engine(chaos.database_url)
        settle_seconds = chaos.wait_for_all(engine)
        report = chaos.check(engine)
        engine.dispose()
    finally:
        chaos.stop()
    report["load_seconds"] = round(load_seconds, 1)
    report["settle_seconds"] = round(settle_seconds, 1)
    report["violations"] = {name: report[name] for name in VIOLATIONS if report.get(name)}
    report["logs"] = str(chaos.log_dir)
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=2000)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    p.add_argument("--kills", type=int, default=3, help="worker SIGKILLs")
    p.add_argument("--broker", choices=(*BROKERS, RabbitCluster.kind), default="redis")
    p.add_argument("--broker-outages", type=int, default=1,
                   help="Redis restarts, RabbitMQ connections cut, or a cluster node stopped and started")
    p.add_argument("--cancels", type=int, default=50, help="orders cancelled (each asked twice) while faults are on")
    p.add_argument("--hot-stock", type=int, default=600, help="units of each of the 5 hot products")
    p.add_argument("--sale", type=int, default=0, metavar="STOCK",
                   help="a flash sale instead: --orders customers each ordering from their cart one unit of one "
                        "product with STOCK units; no cancellations")
    p.add_argument("--chaos-interval", type=float, default=6.0, help="seconds between faults")
    p.add_argument("--settle-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--own-postgres", action="store_true",
                   help="a PostgreSQL server of the run's own instead of DATABASE_URL's: with 4 workers a run "
                        "holds some 70 connections, most of a default server's 100")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "chaos.json")
    return p


def main() -> None:
    args = parser().parse_args()
    conclude(run(args), args.out, hidden=("mismatch_detail", "ledger_mismatch_detail"))


if __name__ == "__main__":
    main()

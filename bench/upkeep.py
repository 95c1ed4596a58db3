"""Upkeep of the database under load (issue 23), on a PostgreSQL of the bench's own with autovacuum on
(production's setting; the shared server runs with it off), as bench/run.py's e2e scenario:

    python -m bench.upkeep retention   # e2e while retention prunes a backlog of old rows, and without
    python -m bench.upkeep storage     # e2e with the hot tables' storage parameters, and with the defaults

retention: before each measured run (after the warm-up), --old-jobs finished jobs 40 days old are
loaded with one set-based INSERT per table (each with 2 timeline events, 2 ledger moves, 1 stock
write, an order and 2 order lines: 6 rows retention deletes, 3 it keeps). One arm runs the workers
with RETENTION_DAYS=30 (they start pruning at their next tick), the other with RETENTION_DAYS=0
(the same rows stay). Both VACUUM the loaded rows before measuring. Reported: the e2e figures, and
how long the backlog took to go.

storage: one arm as migrated (fillfactor and autovacuum thresholds of
migrations/versions/*_hot_tables_storage_parameters.py), the other with those parameters RESET
on the fresh database before the warm-up; both load the same old rows (RETENTION_DAYS=0: they stay,
so the hot tables are large beside a run's changes, as a month of orders is), then VACUUM them.
Reported: the e2e figures and, 11 s after the run settled
(PostgreSQL's backends report their statistics within 10 s of going idle), each hot table's share of
HOT updates, dead rows, size and autovacuum runs.

The arms alternate (A B, then B A, ...) on a shared machine whose speed drifts. Any of bench.run's
flags apply (defaults here: --e2e-sources cart --e2e-workers 2 --orders 3000). JSON: --out.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import text

from bench import run
from bench.stackrun import ROOT
from devstack.postgres import PrivatePostgres

HOT_TABLES = ("jobs", "stock_writes", "inventory_moves")
OLD_DAYS = 40

# One set-based INSERT per table; the old rows name products outside the bench's catalog (1..100),
# so the run's checks of stock against orders are not disturbed.
PRELOAD = [
    "INSERT INTO jobs (id, customer_id, status, step, source, items, attempts, cart_status, created_at, updated_at,"
    " next_run_at) SELECT gen_random_uuid(), 1 + g % 1000, 'completed', 'done', 'cart',"
    " '[{\"product_id\": 1001, \"quantity\": 1}, {\"product_id\": 1002, \"quantity\": 1}]', 1, 'closed', at, at, at"
    " FROM generate_series(1, :jobs) g, LATERAL (SELECT now() - make_interval(days => :days)"
    " + g * interval '1 millisecond' AS at) t",
    "CREATE TEMPORARY TABLE old_jobs ON COMMIT DROP AS SELECT id, customer_id, created_at FROM jobs"
    " WHERE created_at < now() - make_interval(days => :days - 1)",
    "INSERT INTO job_events (job_id, at, event, status, attempt) SELECT id, created_at, e.event, e.status, 1"
    " FROM old_jobs, (VALUES ('attempt_started', 'processing'), ('completed', 'completed')) e(event, status)",
    "INSERT INTO stock_writes (product_id, state, quantity_before, quantity_after, created_at, updated_at)"
    " SELECT 1001, 'applied', 10, 9, created_at, created_at FROM old_jobs",
    "INSERT INTO inventory_moves (job_id, product_id, kind, quantity, state, write_id, created_at, updated_at)"
    " SELECT j.id, p, 'take', 1, 'applied', w.id, j.created_at, j.created_at FROM old_jobs j"
    " JOIN stock_writes w ON w.created_at = j.created_at, (VALUES (1001), (1002)) products(p)",
    "INSERT INTO orders (customer_id, status, job_id, created_at) SELECT customer_id, 'Ordered', id, created_at"
    " FROM old_jobs",
    "INSERT INTO order_items (order_id, product_id, quantity) SELECT o.id, p, 1 FROM orders o"
    " JOIN old_jobs j ON j.id = o.job_id, (VALUES (1001), (1002)) products(p)",
]
OLD_JOBS = "SELECT count(*) FROM jobs WHERE created_at < now() - make_interval(days => :days - 1)"

TABLE_STATS = (
    "SELECT relname, n_tup_upd, n_tup_hot_upd, n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count,"
    " pg_total_relation_size(relid) AS total_bytes, pg_relation_size(relid) AS heap_bytes"
    " FROM pg_stat_user_tables WHERE relname IN ('jobs', 'stock_writes', 'inventory_moves') ORDER BY relname"
)
RESET_STORAGE = [f"ALTER TABLE {table} RESET (fillfactor, autovacuum_vacuum_scale_factor,"
                 " autovacuum_vacuum_insert_scale_factor, autovacuum_analyze_scale_factor)" for table in HOT_TABLES]


def preload(stack, jobs: int) -> dict:
    """The old rows, in one transaction; how long it took."""
    started = time.monotonic()
    with stack.engine.begin() as connection:
        for statement in PRELOAD:
            connection.execute(text(statement), {"jobs": jobs, "days": OLD_DAYS})
    with stack.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # As autovacuum leaves rows loaded long ago: the measured run starts with no vacuum owed.
        connection.exec_driver_sql("VACUUM (ANALYZE) jobs, job_events, stock_writes, inventory_moves, orders,"
                                   " order_items")
    return {"old_jobs": jobs, "seconds": round(time.monotonic() - started, 1)}


class Watch:
    """Counts the old jobs every second from the measured run's start: when the last one went."""

    def __init__(self, stack):
        self.stack, self.samples, self._stop = stack, [], threading.Event()
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self.started, self.stack.scalar(OLD_JOBS, days=OLD_DAYS)))
            self._stop.wait(1.0)

    def stop(self) -> dict:
        self._stop.set()
        self.thread.join()
        gone_at = next((round(at, 1) for at, left in self.samples if left == 0), None)
        return {"old_jobs_at_start": self.samples[0][1] if self.samples else None,
                "old_jobs_left": self.samples[-1][1] if self.samples else None,
                "all_gone_after_s": gone_at}


def table_stats(stack) -> dict:
    time.sleep(11)
    stats = {}
    for row in stack.rows(TABLE_STATS):
        stats[row.relname] = {
            "updates": row.n_tup_upd, "hot_updates": row.n_tup_hot_upd,
            "hot_share": round(row.n_tup_hot_upd / row.n_tup_upd, 3) if row.n_tup_upd else None,
            "live_rows": row.n_live_tup, "dead_rows": row.n_dead_tup,
            "autovacuums": row.autovacuum_count, "autoanalyzes": row.autoanalyze_count,
            "total_mb": round(row.total_bytes / 2**20, 2), "heap_mb": round(row.heap_bytes / 2**20, 2),
        }
    return stats


def one_run(args, experiment: str, arm: str) -> dict:
    name = f"upkeep-{experiment}-{arm}-{len(RESULTS)}"
    stack = run.new_stack(args, name, workers=args.e2e_workers[0],
                          carts=args.orders + args.e2e_warmup * run.WARM_UP_BURSTS)
    watch: list[Watch] = []
    # Retention prunes in the retention experiment's "pruning" arm only: the storage experiment's
    # old rows stay, as a table holding RETENTION_DAYS of orders holds them.
    stack.settings["RETENTION_DAYS"] = "30" if arm == "pruning" else "0"
    with stack:
        if experiment == "storage" and arm == "defaults":
            with stack.engine.begin() as connection:
                for statement in RESET_STORAGE:
                    connection.exec_driver_sql(statement)
        loaded = {}

        def before_measuring(stack) -> None:
            loaded.update(preload(stack, args.old_jobs))
            if experiment == "retention":
                watch.append(Watch(stack))

        report = run.end_to_end(stack, args, args.orders, args.latency_ms, args.e2e_sources[0], before_measuring)
        if watch:
            report["retention"] = {**loaded, **watch[0].stop()}
        if experiment == "storage":
            report["tables"] = table_stats(stack)
            report["old_rows"] = loaded
    run.STACKS.clear()
    report["arm"] = arm
    return report


RESULTS: list[dict] = []


def summary(report: dict) -> str:
    completion = report.get("completion", {})
    line = (f"{report['arm']:>10}  {report.get('orders_per_s')} orders/s  completion p50 {completion.get('p50_s')} s"
            f" p99 {completion.get('p99_s')} s  CPU/order machine {report['cpu'].get('machine_ms')} ms"
            f" service {report['cpu'].get('service_ms')} ms")
    if "retention" in report:
        line += f"  retention {report['retention']}"
    if "tables" in report:
        line += "\n" + "\n".join(f"{'':>12}{table}: {stats}" for table, stats in report["tables"].items())
    return line


def main(argv: list[str] | None = None) -> int:
    parser = run.parser()
    parser.prog, parser.description = "python -m bench.upkeep", __doc__.splitlines()[0]
    parser.add_argument("experiment", choices=("retention", "storage"))
    parser.add_argument("--old-jobs", type=int, default=40_000,
                        help="old finished jobs loaded before the measured run (each with 6 rows retention deletes)")
    parser.add_argument("--pairs", type=int, default=2, help="runs of each arm, alternating")
    parser.set_defaults(e2e_sources=["cart"], e2e_workers=[2], orders=3000,
                        out=ROOT / "bench" / "results" / "upkeep.json")
    args = parser.parse_args(argv)
    args.log_dir = args.log_dir or ROOT / "test-artifacts" / "bench" / time.strftime("upkeep-%Y%m%d-%H%M%S")
    arms = ("pruning", "no_pruning") if args.experiment == "retention" else ("migrated", "defaults")
    postgres = PrivatePostgres(Path(args.log_dir) / "postgres")
    os.environ["DATABASE_URL"] = postgres.url  # each stack's database on it
    try:
        for pair in range(args.pairs):
            for arm in (arms if pair % 2 == 0 else arms[::-1]):
                print(f"== {args.experiment} {arm} ...", flush=True)
                RESULTS.append(one_run(args, args.experiment, arm))
                print(summary(RESULTS[-1]), flush=True)
    finally:
        postgres.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "runs": RESULTS}, indent=2, default=str))
    print("\n".join(summary(report) for report in RESULTS))
    return 0 if all(report["invariants"]["products_mismatched"] == 0 and not report["errors"]
                    for report in RESULTS) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The soak: orders at a constant offered rate for a long time, window by window, to show what drifts.

    python -m bench.soak                                    # 6 windows of 300 s at 80 orders/s
    python -m bench.soak --hold-snapshot                    # the same with one snapshot held open throughout
    python -m bench.soak --rate 80 --windows 3 --window-seconds 60

Orders with two lines in the body are submitted open loop (`bench.loadgen.run_open_loop`: request
i is due at start + i/rate whatever the answers, and its latency counts from when it was due, so
a stall shows in the tail). The default rate is about half of what the e2e scenario completes on
this 2-core machine (150-190 orders/s). After --warmup-seconds of the same load, not counted, the
run is cut into --windows windows of --window-seconds; each reports:

- submission p50/p99/p99.9 of the requests due in it;
- placing time p50/p99: from a job's creation to its completion in its timeline, of the jobs
  created in it (after the run, once every job is final);
- CPU per order: the whole machine's busy time over the window (/proc/stat, as the e2e scenario
  measures) divided by the orders completed in it, and the split by component;
- at the window's end: each hot table's size (pg_total_relation_size) and dead rows
  (pg_stat_user_tables.n_dead_tup), autovacuum runs so far, and the backlog (unfinished jobs, and
  the age of the oldest).

The stack (devstack's, like every scenario's) runs on a PostgreSQL server of the soak's own
(`devstack.postgres.PrivatePostgres`) with production's settings where they matter here:
autovacuum on (the machine's shared server runs without it), fsync and synchronous commit on.
With --hold-snapshot a separate connection opens a REPEATABLE READ transaction, reads
`count(*)` of jobs and stays idle in it until the last window ends, as an analytics query or a
pg_dump would: the xmin horizon stays where it was, and no row updated or deleted after it can be
vacuumed away.

The table goes to stdout, the JSON to --out (default bench/results/soak.json, or
soak-held-snapshot.json), with the command line that reproduces it. Exit status 1 when a request
failed, a job did not complete or an invariant broke; speed is reported, never judged.
"""
from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import bindparam, text

from bench.loadgen import run_open_loop, summary_ms
from bench.run import check_invariants, cpu_per_order, git_state, submission_factory
from bench.stackrun import ROOT, CpuMeter, Stack, python_command
from devstack.postgres import PrivatePostgres

HOT_TABLES = ("jobs", "job_events", "stock_writes", "inventory_moves", "orders", "order_items", "webhook_deliveries")
# What production runs with and the private server's defaults (devstack.postgres) leave out.
PRODUCTION_POSTGRES = {"autovacuum": "on", "fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
STACK_PARTS = ("api", "workers", "postgres", "redis")  # the service's own processes (CpuMeter's roles)
CUSTOMERS = 1000  # the orders cycle over customers 1..1000: at 80/s each sends one every 12.5 s
MB = 1024 * 1024

_TABLES = text(
    "SELECT c.relname, pg_total_relation_size(c.oid), coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0),"
    " coalesce(s.autovacuum_count, 0), coalesce(s.autoanalyze_count, 0)"
    " FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid"
    " WHERE c.relname IN :names AND c.relnamespace = 'public'::regnamespace"
).bindparams(bindparam("names", value=list(HOT_TABLES), expanding=True))
_BACKLOG = text(
    "SELECT count(*), extract(epoch FROM now() - min(created_at)) FROM jobs"
    " WHERE status IN ('queued', 'processing', 'retrying')")
_HORIZON = text("SELECT max(age(backend_xmin)) FROM pg_stat_activity WHERE datname = current_database()")


class HeldSnapshot:
    """One REPEATABLE READ transaction that has read `jobs` and then idles until `release()`."""

    def __init__(self, stack: Stack):
        self.connection = stack.engine.connect().execution_options(isolation_level="REPEATABLE READ")
        self.jobs_seen = self.connection.execute(text("SELECT count(*) FROM jobs")).scalar()
        self.pid = self.connection.execute(text("SELECT pg_backend_pid()")).scalar()
        self.held_at = time.time()

    def release(self) -> dict:
        state = self.connection.execute(text(
            "SELECT state, age(backend_xmin) FROM pg_stat_activity WHERE pid = pg_backend_pid()")).one()
        self.connection.rollback()
        self.connection.close()
        return {"jobs_seen": self.jobs_seen, "held_seconds": round(time.time() - self.held_at, 1),
                "xmin_age_at_release": state[1], "backend_pid": self.pid}


class Sampler(threading.Thread):
    """At each window's end: the machine's CPU over the window, the hot tables, the backlog."""

    def __init__(self, stack: Stack, start: float, windows: int, seconds: float):
        super().__init__(daemon=True)
        self.stack, self.start_at, self.windows, self.seconds = stack, start, windows, seconds
        self.samples: list[dict] = []
        self.error: BaseException | None = None

    def database(self) -> dict:
        with self.stack.engine.connect() as connection:
            tables = {name: {"mb": round(size / MB, 2), "live_rows": live, "dead_rows": dead,
                             "autovacuums": vacuums, "autoanalyzes": analyzes}
                      for name, size, live, dead, vacuums, analyzes
                      in connection.execute(_TABLES)}
            unfinished, oldest = connection.execute(_BACKLOG).one()
            horizon = connection.execute(_HORIZON).scalar()
        return {"tables": {name: tables.get(name) for name in HOT_TABLES},
                "backlog": unfinished, "oldest_unfinished_s": round(float(oldest), 1) if oldest is not None else None,
                "oldest_xmin_age": horizon}

    def run(self) -> None:
        try:
            time.sleep(max(0.0, self.start_at - time.time()))
            for window in range(self.windows):
                with CpuMeter(self.stack) as meter:
                    time.sleep(max(0.0, self.start_at + (window + 1) * self.seconds - time.time()))
                sample = {"window": window + 1, "ended_at": time.time(), "machine": meter.result, **self.database()}
                self.samples.append(sample)
                jobs = sample["tables"]["jobs"] or {}
                print(f"   window {window + 1}/{self.windows}: backlog {sample['backlog']}, "
                      f"{meter.result['machine_busy_cores']} cores busy, jobs {jobs.get('mb')} MB "
                      f"({jobs.get('dead_rows')} dead rows)", flush=True)
        except BaseException as exc:  # noqa: BLE001 - reported with the run
            self.error = exc


def window_reports(args, start: float, load, samples: list[dict], spans: list[tuple[float, float]]) -> list[dict]:
    """One report per window: its requests' latencies, its jobs' placing times, its CPU per order."""
    reports = []
    for window, sample in enumerate(samples):
        begin, end = start + window * args.window_seconds, start + (window + 1) * args.window_seconds
        latencies = [latency for latency, due in zip(load.ok_latencies, load.ok_due)
                     if begin <= load.started_at + due < end]
        # A job is created a few ms after its request was due: the last window keeps its late ones.
        placing = [done - created for created, done in spans
                   if begin <= created and (created < end or window == len(samples) - 1)]
        completed = sum(1 for _, done in spans if begin <= done < end)
        cpu = cpu_per_order(sample["machine"], completed)
        reports.append({
            "window": window + 1,
            "from_s": round(begin - start, 1), "to_s": round(end - start, 1),
            "submitted": len(latencies),
            "submission": {k: v for k, v in summary_ms(latencies).items() if k in ("p50_ms", "p99_ms", "p999_ms",
                                                                                  "max_ms")},
            "placing": {k: v for k, v in summary_ms(placing).items() if k in ("p50_ms", "p99_ms", "max_ms")},
            "placed_of_created": len(placing),
            "completed_in_window": completed,
            "cpu_ms_per_order": cpu.get("machine_ms"),
            # The stack's own processes, which other work on a shared machine does not inflate.
            "stack_cpu_ms_per_order": round(sum(cpu["by_component_ms"].get(part, 0.0) for part in STACK_PARTS), 2)
            if cpu else None,
            "cpu": cpu,
            "machine": {k: sample["machine"][k] for k in ("machine_busy_cores", "others_cores")},
            "tables": sample["tables"],
            "backlog_at_end": sample["backlog"],
            "oldest_unfinished_s": sample["oldest_unfinished_s"],
            "oldest_xmin_age": sample["oldest_xmin_age"],
        })
    return reports


def drift(windows: list[dict]) -> dict:
    """The last window over the first: the issue's measure of a soak that holds (≤ 1.5)."""
    if len(windows) < 2:
        return {}
    first, last = windows[0], windows[-1]

    def ratio(a, b):
        return round(b / a, 2) if a and b is not None else None

    return {"placing_p99": ratio(first["placing"]["p99_ms"], last["placing"]["p99_ms"]),
            "cpu_per_order": ratio(first["cpu_ms_per_order"], last["cpu_ms_per_order"]),
            "stack_cpu_per_order": ratio(first["stack_cpu_ms_per_order"], last["stack_cpu_ms_per_order"]),
            "submission_p99": ratio(first["submission"]["p99_ms"], last["submission"]["p99_ms"])}


def soak(args) -> dict:
    server = PrivatePostgres(args.log_dir / "postgres", settings=PRODUCTION_POSTGRES)
    try:
        stack = Stack(args, "soak", workers=args.workers, carts=0, log_root=args.log_dir)
        stack.base_database_url = server.url
        with stack:
            return drive(stack, args)
    finally:
        server.stop()


def drive(stack: Stack, args) -> dict:
    stack.set_latency(args.latency_ms)
    postgres = {name: stack.scalar("SELECT current_setting(:name)", name=name) for name in PRODUCTION_POSTGRES}
    factory = submission_factory(stack.api_port, CUSTOMERS, args.seed)
    warm = run_open_loop("127.0.0.1", stack.api_port, factory, rate=args.rate, duration=args.warmup_seconds,
                         connections=args.clients, expect=202) if args.warmup_seconds > 0 else None
    snapshot = HeldSnapshot(stack) if args.hold_snapshot else None
    start = time.time() + 0.5
    sampler = Sampler(stack, start, args.windows, args.window_seconds)
    sampler.start()
    load = run_open_loop("127.0.0.1", stack.api_port, factory, rate=args.rate,
                         duration=args.windows * args.window_seconds, connections=args.clients, expect=202,
                         start_at=start)
    sampler.join()
    held = snapshot.release() if snapshot is not None else None
    accepted = load.count(202) + (warm.count(202) if warm else 0)
    settle = stack.wait_until_settled(accepted, args.settle_timeout)
    if sampler.error is not None:
        raise sampler.error
    spans = stack.completion_times(since=start - 1)
    windows = window_reports(args, start, load, sampler.samples, spans)
    invariants = check_invariants(stack, accepted)
    errors = load.requests - load.count(202) + load.connect_failures + (
        warm.requests - warm.count(202) + warm.connect_failures if warm else 0)
    return {
        "rate": args.rate, "windows_of_s": args.window_seconds, "hold_snapshot": args.hold_snapshot,
        "postgres": {"server": "private (devstack.postgres)", "settings": postgres},
        "warm_up_orders": warm.count(202) if warm else 0,
        "submitted": load.requests,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "error_samples": load.error_samples[:3],
        "waited_for_connection": load.waited_for_connection,
        "client_cpu_us_per_request": round(load.client_cpu_seconds / load.requests * 1e6, 1) if load.requests else None,
        "windows": windows,
        "last_over_first": drift(windows),
        "held_snapshot": held,
        "settle": settle,
        "invariants": invariants,
        "errors": errors,
        "ok": errors == 0 and settle["settled"] and invariants["ok"],
    }


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(report: dict) -> str:
    """Two tables, a row per window: latencies, CPU and backlog; then the hot tables' size and dead rows."""
    head = ["window", "sub p50", "p99", "p99.9 ms", "placing p50", "p99 ms", "CPU ms/order", "stack's", "backlog",
            "others' cores"]
    rows = [[f"{w['window']} ({w['from_s']:g}-{w['to_s']:g} s)", _fmt(w["submission"]["p50_ms"]),
             _fmt(w["submission"]["p99_ms"]), _fmt(w["submission"]["p999_ms"]), _fmt(w["placing"]["p50_ms"], 0),
             _fmt(w["placing"]["p99_ms"], 0), _fmt(w["cpu_ms_per_order"], 2), _fmt(w["stack_cpu_ms_per_order"], 2), str(w["backlog_at_end"]),
             _fmt(w["machine"]["others_cores"], 2)] for w in report["windows"]]
    size_head = ["window"] + [f"{name} MB/dead" for name in HOT_TABLES]
    size_rows = [[str(w["window"])] + [f"{_fmt((w['tables'][n] or {}).get('mb'))}/{(w['tables'][n] or {}).get('dead_rows')}"
                                       for n in HOT_TABLES] for w in report["windows"]]

    def render(header, body):
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in [header, *body])

    return "\n\n".join([render(head, rows), render(size_head, size_rows)])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rate", type=float, default=80.0, help="orders/s offered (about half the e2e capacity here)")
    p.add_argument("--windows", type=int, default=6)
    p.add_argument("--window-seconds", type=float, default=300.0)
    p.add_argument("--hold-snapshot", action="store_true",
                   help="hold one REPEATABLE READ snapshot (after a read of jobs) open for the whole run")
    p.add_argument("--warmup-seconds", type=float, default=10.0, help="the same load first, not counted")
    p.add_argument("--latency-ms", type=float, default=20.0, help="the catalog's added latency per call")
    p.add_argument("--workers", type=int, default=2, help="celery worker processes")
    p.add_argument("--concurrency", type=int, default=16, help="threads per celery worker")
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn processes")
    p.add_argument("--web-threads", type=int, default=4, help="gunicorn threads per process")
    p.add_argument("--server", choices=("gunicorn", "granian"), default="gunicorn", help="the server under the API")
    p.add_argument("--clients", type=int, default=64, help="most connections open at once (a request due while "
                                                           "all are busy waits, its latency counted from its due time)")
    p.add_argument("--settle-timeout", type=float, default=900.0, help="longest wait for the jobs after the windows")
    p.add_argument("--access-log", action="store_true", help="gunicorn access log on")
    p.add_argument("--seed", type=int, default=7, help="random seed of the orders' lines")
    p.add_argument("--out", type=Path, default=None,
                   help="default bench/results/soak.json (soak-held-snapshot.json with --hold-snapshot)")
    p.add_argument("--log-dir", type=Path, default=None, help="default test-artifacts/bench/<time>-soak")
    return p


def reproduce_command(args) -> str:
    argv = [python_command(), "-m", "bench.soak"]
    for name in ("rate", "windows", "window_seconds", "warmup_seconds", "latency_ms", "workers", "concurrency",
                 "server", "web_workers", "web_threads", "clients", "seed"):
        value = getattr(args, name)
        argv += ["--" + name.replace("_", "-"), f"{value:g}" if isinstance(value, float) else str(value)]
    argv += ["--hold-snapshot"] if args.hold_snapshot else []
    argv += ["--access-log"] if args.access_log else []
    return shlex.join(argv)


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    args = parser().parse_args(argv)
    args.out = args.out or ROOT / "bench" / "results" / ("soak-held-snapshot.json" if args.hold_snapshot else "soak.json")
    args.log_dir = args.log_dir or ROOT / "test-artifacts" / "bench" / f"{time.strftime('%Y%m%d-%H%M%S')}-soak"
    started = time.time()
    print(f"== soak: {args.windows} windows of {args.window_seconds:g} s at {args.rate:g} orders/s"
          f"{', one snapshot held' if args.hold_snapshot else ''} ...", flush=True)
    report = {"command": reproduce_command(args),
              "meta": {"invoked": shlex.join([python_command(), "-m", "bench.soak", *(sys.argv[1:] if argv is None
                                                                                      else argv)]),
                       "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                       "git": git_state(), "logs": str(args.log_dir)},
              **soak(args)}
    report["meta"]["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print(table(report))
    print(f"\nlast window over first: {report['last_over_first']}; held snapshot: {report['held_snapshot']}")
    print(f"errors {report['errors']}; invariants {'OK' if report['invariants']['ok'] else 'BROKEN'}; "
          f"settled {report['settle']}")
    print(f"results in {args.out}\nreproduce: {report['command']}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmarks: how fast the API takes orders, how fast and at what CPU cost the workers place them,
against the seed.

    python -m bench.run                                  # every scenario, default sizes (about 10 minutes)
    python -m bench.run --scenarios submission,e2e       # some of them
    python -m bench.run --duration 2 --orders 100 ...    # smaller (see --help)

Scenarios (each starts a stack of its own through devstack.stack: a fresh database, its own
Redis, the reference peers reset to 100 products of 10**7 units and one 2-line cart per
customer, the API under gunicorn, Celery workers with the threads pool):

  submission  POST /orders/{customer} (2 lines) for --duration s at --clients connections with no
              worker running (jobs just queue: the API's own speed), and the same load against
              bench/bare_app.py (202, no database, no broker) under the same gunicorn flags, the two
              loaded in alternating slices so that background load on a shared machine hits both;
              then both open loop (requests on a schedule, latency from when each was due) at
              --open-loop-fractions of ours' closed-loop rate: p50/p99/p99.9 at the same offered rates.
  polling     GET /jobs/{id} over --poll-jobs completed jobs for --duration s.
  e2e         for each order source of --e2e-sources (cart: POST without a body, the worker reads
              the customer's cart; items: the two lines in the body) and each worker count of
              --e2e-workers: --orders orders as fast as the API takes them, the catalog adding
              --latency-ms to every call; orders completed per second from the first 202 to the last
              completion, submission-to-completion percentiles, the whole machine's CPU per completed
              order (/proc/stat) and its split by component, then the invariants.
  latency     one client, one cart order at a time (--latency-orders), catalog at --latency-ms: from
              the POST to the poll that sees the job completed (polled every --poll-interval-ms).
  seed        the seed's synchronous create_order (bench/seed_port.py) under the same gunicorn
              flags, same peers and latency, ordering the customers' carts, for --seed-duration s at
              each client count of --seed-clients: orders/s, latency, failed requests, stock corrupted.
  busy_submission  submission latency with --workers workers placing the orders meanwhile, at each
              of --busy-latencies ms of catalog latency.
  memory      RSS of the API's and the workers' processes every 0.5 s while --memory-orders go through.
  flash_sale  bench/flash_sale.py: --sale-customers customers racing for --sale-stock units of one
              product, ours checked and measured, then the seed's same sale at --sale-seed-clients.
  bulk        imports (POST /imports): with no worker running, imports of --import-lines lines at
              --bulk-clients connections against single submissions (POST /customers/{c}/orders) at
              --clients, closed loop, in alternating slices of --bulk-duration s in all: accepted orders/s
              of each and their ratio; then one import of --big-import lines placed end to end by
              --workers workers (catalog at --latency-ms): orders/s, CPU per order, and the placing
              time (creation to completion) of single orders sent at --bulk-singles-rate per second
              during it, against --bulk-idle-singles of them on the idle stack just before.

The load generator is bench/loadgen.py (asyncio, keep-alive; why not wrk: see there).
Results: a table on stdout and JSON in --out (default bench/results/bench.json), each
result with the command line that reproduces it. Exit status 1 when any of our
requests failed or an invariant broke; speed is reported, never judged.
"""
from __future__ import annotations

import argparse
import http.client
import json
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import psutil

from bench import flash_sale
from bench.loadgen import LoadResult, http_request, run_load, run_open_loop, summary_ms
from bench.stackrun import (
    PRODUCTS, ROOT, STOCK, CpuMeter, Stack, auth_headers, customer_of, order_items, python_command, tree_rss,
)

SCENARIOS = ("submission", "polling", "e2e", "latency", "seed", "busy_submission", "memory", "bulk")
SOURCES = ("cart", "items")
DEFAULT_OUT = ROOT / "bench" / "results" / "bench.json"
MB = 1024 * 1024
FINAL = ("completed", "rejected", "failed", "cancelled")

# Which flags each scenario's numbers depend on (the reproducing command names them all).
COMMON_FLAGS = ("server", "web_workers", "web_threads", "workers", "concurrency", "clients", "seed", "access_log")
SCENARIO_FLAGS = {
    "submission": ("duration", "warmup", "rounds", "open_loop_fractions", "open_loop_duration"),
    "polling": ("poll_jobs", "duration", "warmup"),
    "e2e": ("orders", "e2e_warmup", "e2e_sources", "e2e_workers", "latency_ms", "settle_timeout"),
    "latency": ("latency_orders", "latency_ms", "poll_interval_ms"),
    "seed": ("seed_clients", "seed_duration", "orders", "latency_ms"),
    "busy_submission": ("busy_latencies", "busy_duration", "warmup"),
    "memory": ("memory_orders", "memory_latency_ms", "settle_timeout"),
    "bulk": ("import_lines", "bulk_clients", "bulk_duration", "rounds", "big_import", "bulk_singles_rate",
             "bulk_idle_singles", "e2e_warmup", "latency_ms", "settle_timeout"),
}


# ------------------------------------------------------------------------------------------ helpers

def order_body(index: int, seed: int) -> bytes:
    return json.dumps({"items": order_items(index, seed)}).encode()


def submission_factory(port: int, count: int, seed: int, source: str = "items", first: int = 0):
    """Requests POST /orders/{customer} for order i (cycling over `count` prebuilt ones, orders
    `first`...): with its two lines in the body (`items`), or without a body, so that the worker
    orders the customer's cart (`cart`: the stack's carts hold the same two lines)."""
    host = f"127.0.0.1:{port}"
    prebuilt = [http_request("POST", f"/orders/{customer_of(i)}", host,
                             order_body(i, seed) if source == "items" else None,
                             headers=auth_headers(customer_of(i))) for i in range(first, first + count)]
    return lambda i: prebuilt[i % count]


def load_report(result, expect: int, *, rate_name: str) -> dict:
    """The numbers of one load run."""
    ok = result.count(expect)
    return {
        "requests": result.requests,
        rate_name: round(ok / result.elapsed, 1) if result.elapsed else None,
        "seconds": round(result.elapsed, 2),
        **summary_ms(result.ok_latencies),
        "errors": result.requests - ok + result.connect_failures,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "connections_dropped": result.connection_errors,
        "connect_failures": result.connect_failures,
        "error_samples": result.error_samples[:3],
        "client_cpu_us_per_request": round(result.client_cpu_seconds / result.requests * 1e6, 1)
        if result.requests else None,
    }


def warm_up(port: int, factory, args, expect: int) -> None:
    """Fill connection pools and lazy imports before a timed run (answers not counted)."""
    if args.warmup > 0:
        run_load("127.0.0.1", port, factory, connections=args.clients, duration=args.warmup, expect=expect)


def timed_load(stack: Stack, port: int, factory, args, *, duration=None, count=None, expect: int, rate_name: str,
               progress=None) -> tuple[dict, object]:
    with CpuMeter(stack) as meter:
        result = run_load("127.0.0.1", port, factory, connections=args.clients, duration=duration, count=count,
                          expect=expect, progress=progress)
    report = load_report(result, expect, rate_name=rate_name)
    report["machine"] = meter.result
    return report, result


def check_invariants(stack: Stack, accepted: int) -> dict:
    """Every accepted order completed once, and the catalog lost exactly what the orders hold."""
    state = stack.peers_state()
    jobs = dict(stack.rows("SELECT status, count(*) FROM jobs GROUP BY status"))
    sold = dict(stack.rows("SELECT i.product_id, sum(i.quantity) FROM order_items i GROUP BY i.product_id"))
    orders = stack.scalar("SELECT count(*) FROM orders")
    duplicates = stack.scalar("SELECT count(*) FROM (SELECT job_id FROM orders GROUP BY job_id HAVING count(*) > 1) d")
    pending_moves = stack.scalar("SELECT count(*) FROM inventory_moves WHERE state = 'pending'")
    mismatched, below_zero = [], []
    for product in PRODUCTS:
        final = state["products"][str(product)]["quantity"]
        if final < 0:
            below_zero.append(product)
        if STOCK - final != sold.get(product, 0):
            mismatched.append({"product_id": product, "catalog_decrease": STOCK - final,
                               "ordered": int(sold.get(product, 0))})
    total_jobs = sum(jobs.values())
    non_completed = total_jobs - jobs.get("completed", 0)
    checks = {
        "jobs": total_jobs,
        "jobs_equal_accepted": total_jobs == accepted,
        "non_completed_jobs": non_completed,
        "jobs_by_status": jobs,
        "orders": orders,
        "duplicate_orders": duplicates,
        "products_mismatched": len(mismatched),
        "mismatch_detail": mismatched[:5],
        "products_below_zero": len(below_zero),
        "pending_ledger_rows": pending_moves,
        "units_ordered": int(sum(sold.values())),
    }
    checks["ok"] = (non_completed == 0 and total_jobs == accepted and not mismatched and not below_zero
                    and orders == total_jobs and duplicates == 0 and pending_moves == 0)
    return checks


def completion_report(stack: Stack, first_accepted_at: float, since: float = 0.0) -> dict:
    """Orders/s from the first 202 to the last completion, and submission-to-completion times (of the
    jobs created since `since`)."""
    rows = stack.completion_times(since)
    if not rows:
        return {"completed": 0, "orders_per_s": None}
    spans = [done - created for created, done in rows]
    window = max(done for _, done in rows) - first_accepted_at
    dist = summary_ms(spans)
    return {
        "completed": len(rows),
        "orders_per_s": round(len(rows) / window, 1) if window > 0 else None,
        "first_202_to_last_completed_s": round(window, 2),
        "completion": {key.replace("_ms", "_s"): (round(value / 1000.0, 3) if value is not None else None)
                       for key, value in dist.items()},
    }


# At most this many warm-up bursts (the e2e stacks hold carts for all of them).
WARM_UP_BURSTS = 8


def warm_every_worker(stack: Stack, args, first: int, source: str) -> int:
    """Bursts of --e2e-warmup orders, each settled, until every worker process has placed some (its
    log says a job is completed), at most WARM_UP_BURSTS of them; the orders submitted. A process's
    first orders compile its SQL statements and fill its pools: a one-time cost. Wake-ups are
    coalesced, so one burst may reach only one or two processes, and a run measured with cold
    processes would charge that cost to the number of processes."""
    warmed = 0
    for burst in range(WARM_UP_BURSTS if args.e2e_warmup > 0 else 0):
        factory = submission_factory(stack.api_port, args.e2e_warmup, args.seed, source,
                                     first=first + burst * args.e2e_warmup)
        warmed += run_load("127.0.0.1", stack.api_port, factory, connections=args.clients, count=args.e2e_warmup,
                           expect=202).count(202)
        stack.wait_until_settled(warmed, args.settle_timeout)
        if all(" is completed" in worker.log_text() for worker in stack.workers):
            break
    return warmed


def end_to_end(stack: Stack, args, orders: int, latency_ms: float, source: str = "items",
               before_measuring=None) -> dict:
    """Warm up, then submit `orders` at --clients connections with the catalog at `latency_ms`, wait,
    measure, check (the warm-up's orders too: they are orders like any other). `before_measuring(stack)`,
    when given, runs between the warm-up and the measured run (bench/upkeep.py loads old rows there)."""
    stack.set_latency(latency_ms)
    warmed = warm_every_worker(stack, args, orders, source)
    if before_measuring is not None:
        before_measuring(stack)
    measured_from = time.time()
    factory = submission_factory(stack.api_port, orders, args.seed, source)
    with CpuMeter(stack) as whole:
        submit, result = timed_load(stack, stack.api_port, factory, args, count=orders, expect=202,
                                    rate_name="accepted_per_s")
        settle = stack.wait_until_settled(result.count(202) + warmed, args.settle_timeout)
    report = {"source": source, "orders": orders, "latency_ms": latency_ms, "workers": len(stack.workers),
              "concurrency": args.concurrency, "warm_up_orders": warmed, "submission": submit, "settle": settle}
    if result.first_ok_at is None:
        report.update({"completed": 0, "orders_per_s": None})
    else:
        report.update(completion_report(stack, result.first_ok_at, since=measured_from))
    report["machine"] = whole.result
    report["cpu"] = cpu_per_order(whole.result, report.get("completed"))
    report["sweeper_redispatched"] = sweeper_redispatched(stack)
    stats = stack.peers_stats()["requests"]
    report["peer_calls_per_order"] = round(sum(stats.values()) / max(report.get("completed") or 1, 1), 2)
    report["invariants"] = check_invariants(stack, result.count(202) + warmed)
    report["errors"] = submit["errors"]
    return report


def cpu_per_order(meter: dict, completed: int | None) -> dict:
    """CPU milliseconds per completed order, over the submission and the drain together.

    `machine_ms`: the whole machine's busy time (/proc/stat) over the run, divided by the orders.
    `by_component_ms`: each part's own processes (workers, postgres, api, redis, peers, bench: the
    load generator and the waits), and `unattributed`: the rest of the machine's busy time (the
    kernel, PostgreSQL's background processes, and anything else running on a shared machine).
    `service_ms`: the machine less the reference peers (they stand in for services on other
    machines) and less the bench's own client: the service's own cost per order. Read it with
    `machine.others_cores`: on a busy shared machine, other work lands in it too.
    """
    if not completed:
        return {}
    roles = meter["cpu_seconds_by_role"]
    busy = meter["machine_busy_seconds"]
    by_component = dict(roles)
    by_component["unattributed"] = max(0.0, busy - sum(roles.values()))

    def ms(seconds: float) -> float:
        return round(seconds * 1000 / completed, 2)

    return {
        "machine_ms": ms(busy),
        "service_ms": ms(max(0.0, busy - roles.get("peers", 0.0) - roles.get("bench", 0.0))),
        "peers_ms": ms(roles.get("peers", 0.0)),
        "bench_client_ms": ms(roles.get("bench", 0.0)),
        "by_component_ms": {role: ms(seconds) for role, seconds in sorted(by_component.items(), key=lambda kv: -kv[1])},
    }


def sweeper_redispatched(stack: Stack) -> int | None:
    """Wake-ups the workers' sweeper sent again for jobs overdue in the queue (from their logs; each is
    one more task execution). None when the log line is not found in this version of the service."""
    total, seen = 0, False
    for worker in stack.workers:
        for match in re.finditer(r"sweeper re-dispatched (\d+)", worker.log_text()):
            total, seen = total + int(match.group(1)), True
    return total if seen else None


def new_stack(args, name: str, *, workers: int | None = None, carts: int = 1000) -> Stack:
    stack = Stack(args, name, workers=args.workers if workers is None else workers, carts=carts,
                  log_root=args.log_dir)
    STACKS.append(stack)
    return stack


STACKS: list[Stack] = []  # the stacks the current scenario started


# ---------------------------------------------------------------------------------------- scenarios

def merge_results(results: list) -> LoadResult:
    """Several load runs as one (latencies pooled, time and CPU added up)."""
    merged = LoadResult()
    for result in results:
        merged.requests += result.requests
        for status, count in result.statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + count
        merged.latencies.extend(result.latencies)
        merged.ok_latencies.extend(result.ok_latencies)
        merged.elapsed += result.elapsed
        merged.client_cpu_seconds += result.client_cpu_seconds
        merged.connection_errors += result.connection_errors
        merged.connect_failures += result.connect_failures
        merged.error_samples.extend(result.error_samples[: 10 - len(merged.error_samples)])
    return merged


def interleaved(stack: Stack, sides: dict, args, expect: int) -> dict:
    """Load each side (name -> (port, factory)) in alternating slices, A B B A A B ..., so that a
    machine whose background load drifts (a shared one) weighs on every side alike."""
    rounds = max(1, min(args.rounds, int(args.duration)))
    slice_s = args.duration / rounds
    runs = {name: [] for name in sides}
    meters = {name: [] for name in sides}
    for round_no in range(rounds):
        for name in (list(sides) if round_no % 2 == 0 else list(reversed(sides))):
            port, factory = sides[name]
            with CpuMeter(stack) as meter:
                runs[name].append(run_load("127.0.0.1", port, factory, connections=args.clients, duration=slice_s,
                                           expect=expect))
            meters[name].append(meter.result)
    reports = {}
    for name in sides:
        report = load_report(merge_results(runs[name]), expect, rate_name="accepted_per_s")
        report["per_slice_per_s"] = [round(r.count(expect) / r.elapsed, 1) for r in runs[name]]
        report["machine"] = {key: round(sum(m[key] for m in meters[name]) / len(meters[name]), 2)
                             for key in meters[name][0] if key not in ("cpus", "cpu_seconds_by_role")}
        # The whole machine's busy time (/proc/stat) per answered request, the load generator's included.
        busy = sum(m["machine_busy_seconds"] for m in meters[name])
        report["machine_cpu_ms_per_request"] = round(busy * 1000 / report["requests"], 3) if report["requests"] else None
        # Each part's own processes (api, bare, redis, postgres, bench) per answered request.
        by_role: dict[str, float] = {}
        for meter in meters[name]:
            for role, seconds in meter["cpu_seconds_by_role"].items():
                by_role[role] = by_role.get(role, 0.0) + seconds
        report["cpu_ms_per_request_by_role"] = {role: round(seconds * 1000 / report["requests"], 3)
                                                for role, seconds in sorted(by_role.items(), key=lambda kv: -kv[1])
                                                } if report["requests"] else {}
        reports[name] = report
    reports["slices"] = {"rounds": rounds, "seconds_each": round(slice_s, 2)}
    return reports


def scenario_submission(args) -> dict:
    # No worker runs here (none is started): the API's own speed; jobs just queue in Redis.
    with new_stack(args, "submission", workers=0) as stack:
        _, bare_port, bare_argv = stack.start_app("bare", "bench.bare_app:app")
        sides = {"ours": (stack.api_port, submission_factory(stack.api_port, 1000, args.seed)),
                 "bare": (bare_port, submission_factory(bare_port, 1000, args.seed))}
        for port, factory in sides.values():
            warm_up(port, factory, args, 202)
        reports = interleaved(stack, sides, args, 202)
        ours, bare = reports["ours"], reports["bare"]
        ours["jobs_in_database"] = stack.scalar("SELECT count(*) FROM jobs")
        open_loop = open_loop_runs(sides, ours["accepted_per_s"], args)
    ratio = (ours["accepted_per_s"] / bare["accepted_per_s"]) if bare["accepted_per_s"] else None
    pairs = [o / b for o, b in zip(ours["per_slice_per_s"], bare["per_slice_per_s"]) if b]
    return {
        "worker": "none running during the measurement (jobs only queue in Redis): this is the API's own speed",
        "gunicorn": {"workers": args.web_workers, "threads": args.web_threads, "bare_argv": bare_argv[1:]},
        "method": "ours and bare both up, loaded in alternating slices (ABBA...) of equal length",
        "slices": reports["slices"],
        "ours": ours,
        "bare": bare,
        "ours_fraction_of_bare": round(ratio, 3) if ratio is not None else None,
        "ours_fraction_of_bare_per_slice_pair": [round(x, 3) for x in pairs],
        "open_loop": open_loop,
        "errors": ours["errors"] + bare["errors"] + sum(r[side]["errors"] for r in open_loop for side in sides),
        "ok": ours["errors"] == 0 and bare["errors"] == 0 and all(r[side]["errors"] == 0 for r in open_loop
                                                                  for side in sides),
    }


def open_loop_runs(sides: dict, capacity: float | None, args) -> list[dict]:
    """Each side (name -> (port, factory)) at each of --open-loop-fractions of `capacity` (ours, closed
    loop, measured just before), open loop: requests sent on a schedule whatever the answers, each
    latency counted from when it was due. The sides alternate in two slices each (A B B A)."""
    runs = []
    for fraction in args.open_loop_fractions if capacity else []:
        rate = capacity * fraction
        results = {name: [] for name in sides}
        for name in [*sides, *reversed(sides)]:
            port, factory = sides[name]
            results[name].append(run_open_loop("127.0.0.1", port, factory, rate=rate,
                                               duration=args.open_loop_duration / 2, connections=args.clients,
                                               expect=202))
        run = {"fraction_of_capacity": fraction, "offered_per_s": round(rate, 1)}
        for name in sides:
            merged = merge_results(results[name])
            run[name] = {**{k: v for k, v in summary_ms(merged.ok_latencies).items() if k != "p90_ms"},
                         "requests": merged.requests,
                         "errors": merged.requests - merged.count(202) + merged.connect_failures,
                         "waited_for_connection": sum(r.waited_for_connection for r in results[name])}
        bare_p99 = run.get("bare", {}).get("p99_ms")
        run["ours_p99_over_bare"] = round(run["ours"]["p99_ms"] / bare_p99, 1) if bare_p99 else None
        runs.append(run)
    return runs


def scenario_polling(args) -> dict:
    with new_stack(args, "polling") as stack:
        factory = submission_factory(stack.api_port, args.poll_jobs, args.seed)
        fill = run_load("127.0.0.1", stack.api_port, factory, connections=args.clients, count=args.poll_jobs,
                        expect=202)
        settle = stack.wait_until_settled(fill.count(202), args.settle_timeout)
        ids = stack.rows("SELECT id, customer_id FROM jobs ORDER BY id")
        host = f"127.0.0.1:{stack.api_port}"
        prebuilt = [http_request("GET", f"/jobs/{job_id}", host, headers=auth_headers(customer))
                    for job_id, customer in ids] or [
            http_request("GET", "/jobs/00000000-0000-0000-0000-000000000000", host)]

        def poll(i):
            return prebuilt[i % len(prebuilt)]

        warm_up(stack.api_port, poll, args, 200)
        report, _ = timed_load(stack, stack.api_port, poll, args, duration=args.duration, expect=200,
                               rate_name="requests_per_s")
    report.update({"job_ids": len(ids), "fill_errors": fill.requests - fill.count(202), "fill_settle": settle,
                   "job_status": "completed (each answer reads the job and its order id in one query)"})
    report["errors"] = report["errors"] + report["fill_errors"]
    report["ok"] = report["errors"] == 0 and settle["settled"]
    return report


def scenario_e2e(args) -> dict:
    runs = []
    for source in args.e2e_sources:
        for workers in args.e2e_workers:
            with new_stack(args, f"e2e-{source}-{workers}w", workers=workers,
                           carts=args.orders + args.e2e_warmup * WARM_UP_BURSTS) as stack:
                run = end_to_end(stack, args, args.orders, args.latency_ms, source)
            run["command"] = reproduce_command(args, ["e2e"], e2e_sources=[source], e2e_workers=[workers])
            runs.append(run)
    errors = sum(run["errors"] for run in runs)
    return {"runs": runs, "errors": errors, "ok": errors == 0 and all(run["invariants"]["ok"] for run in runs)}


def scenario_latency(args) -> dict:
    """One client, one cart order at a time: POST, then GET /jobs/{id} every --poll-interval-ms until it ends."""
    orders, warmup = args.latency_orders, 3
    with new_stack(args, "latency", carts=orders + warmup) as stack:
        stack.set_latency(args.latency_ms)
        connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=30)

        def call(method: str, path: str, customer: int) -> tuple[int, dict]:
            connection.request(method, path, headers=auth_headers(customer))
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read() or b"{}")

        latencies, polls, outcomes, errors = [], 0, {}, []
        for index in range(warmup + orders):  # the first orders warm the pools and lazy imports: not counted
            customer = customer_of(index)
            started = time.perf_counter()
            status, body = call("POST", f"/orders/{customer}", customer)
            if status != 202:
                errors.append({"status": status, "body": body})
                continue
            while True:
                status, job = call("GET", f"/jobs/{body['job_id']}", customer)
                polls += index >= warmup
                if status != 200 or job["status"] in FINAL:
                    break
                time.sleep(args.poll_interval_ms / 1000)
            if index >= warmup:
                latencies.append(time.perf_counter() - started)
                outcomes[job.get("status", status)] = outcomes.get(job.get("status", status), 0) + 1
        connection.close()
        spans = [done - created for created, done in stack.completion_times()[warmup:]]
        invariants = check_invariants(stack, warmup + orders - len(errors))
    report = {
        "orders": orders, "source": "cart", "latency_ms": args.latency_ms, "workers": len(stack.workers),
        "poll_interval_ms": args.poll_interval_ms,
        **summary_ms(latencies),
        "server_side": {"what": "from the job's creation to its completion in its timeline, same orders",
                        **summary_ms(spans)},
        "polls_per_order": round(polls / len(latencies), 1) if latencies else None,
        "outcomes": {str(k): v for k, v in outcomes.items()},
        "error_samples": errors[:3],
        "invariants": invariants,
        "note": "from the POST to the poll that sees the job final, one order at a time; the poll period adds up to "
                "poll_interval_ms plus one GET to each figure",
    }
    report["errors"] = len(errors) + sum(v for k, v in outcomes.items() if k != "completed")
    report["ok"] = report["errors"] == 0 and invariants["ok"]
    return report


def start_seed(stack: Stack) -> tuple[int, list[str]]:
    """The seed (bench/seed_port.py) serving on the stack instead of our API; (port, argv)."""
    # Only the seed serves here: our API (which created the service's tables) is stopped, no worker runs.
    stack.stop_api()
    seed_env = {"SEED_DSN": stack.libpq_dsn(), "SEED_SCHEMA": "seed"}
    # The seed created its tables when it started; do it once before gunicorn's workers race to.
    subprocess.run([sys.executable, "-c", "import bench.seed_port"], cwd=ROOT, env={**stack.env, **seed_env},
                   check=True, capture_output=True, timeout=60)
    _, port, argv = stack.start_app("seed", "bench.seed_port:app", seed_env)
    return port, argv


def seed_run(args, clients: int) -> dict:
    """The seed at `clients` connections for --seed-duration s, ordering customers' carts (cycling over them)."""
    with new_stack(args, f"seed-{clients}c", workers=0, carts=args.orders) as stack:
        port, argv = start_seed(stack)
        stack.set_latency(args.latency_ms)
        host = f"127.0.0.1:{port}"
        prebuilt = [http_request("POST", f"/orders/{customer_of(i)}", host, headers=auth_headers(customer_of(i)))
                    for i in range(args.orders)]
        with CpuMeter(stack) as meter:
            result = run_load("127.0.0.1", port, lambda i: prebuilt[i % len(prebuilt)], connections=clients,
                              duration=args.seed_duration, expect=201)
        load = load_report(result, 201, rate_name="orders_per_s")
        state = stack.peers_state()
        sold = dict(stack.rows("SELECT product_id, sum(quantity) FROM seed.order_items GROUP BY product_id"))
        orders = stack.scalar("SELECT count(*) FROM seed.orders")
    decreases = {p: STOCK - state["products"][str(p)]["quantity"] for p in PRODUCTS}
    ordered = int(sum(sold.values()))
    report = {
        "clients": clients,
        "latency_ms": args.latency_ms,
        "gunicorn_argv": argv[1:],
        **load,
        "failed_requests": load["errors"],
        "orders_in_database": orders,
        "units_ordered": ordered,
        "units_taken_from_catalog": sum(decreases.values()),
        "units_lost_to_get_put_races": ordered - sum(decreases.values()),
        "products_with_corrupted_stock": sum(1 for p in PRODUCTS if decreases[p] != sold.get(p, 0)),
        "products_oversold": sum(1 for p in PRODUCTS if state["products"][str(p)]["quantity"] < 0),
        "machine_cpu_ms_per_order": round(meter.result["machine_busy_seconds"] * 1000 / load["statuses"]["201"], 2)
        if load["statuses"].get("201") else None,
        "command": reproduce_command(args, ["seed"], seed_clients=[clients]),
    }
    return report


def scenario_seed(args) -> dict:
    """The seed at each client count. Its failures and lost units are what it does, not errors of the bench."""
    runs = [seed_run(args, clients) for clients in args.seed_clients]
    return {
        "runs": runs,
        "note": "orders_per_s counts 201 answers over the run; latency is the client's request time, which for the "
                "seed is the whole order; failed requests and corrupted stock are the seed's own losses",
        "errors": 0,
        "ok": all(run["orders_per_s"] for run in runs),
    }


def scenario_busy_submission(args) -> dict:
    """Submission latency while --workers workers place the orders, at each catalog latency."""
    runs = []
    for latency in args.busy_latencies:
        with new_stack(args, f"busy-submission-{latency:g}ms") as stack:
            stack.set_latency(latency)
            factory = submission_factory(stack.api_port, 1000, args.seed)
            warm_up(stack.api_port, factory, args, 202)
            report, _ = timed_load(stack, stack.api_port, factory, args, duration=args.busy_duration, expect=202,
                                   rate_name="accepted_per_s")
        runs.append({"catalog_latency_ms": latency, "workers_running": len(stack.workers), **report})
    errors = sum(r["errors"] for r in runs)
    return {"runs": runs, "errors": errors, "ok": errors == 0}


def scenario_memory(args) -> dict:
    orders = args.memory_orders
    checkpoint = min(2000, max(1, orders // 5))
    with new_stack(args, "memory", carts=1000) as stack:
        stack.set_latency(args.memory_latency_ms)
        submitted = [0]
        samples: list[dict] = []
        stop = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            completed = stack.scalar("SELECT count(*) FROM jobs WHERE status = 'completed'")
            samples.append({
                "t": round(time.monotonic() - started, 2),
                "submitted": submitted[0],
                "completed": completed,
                "api_rss_mb": round(tree_rss(stack.api) / MB, 1),
                "workers_rss_mb": round(sum(tree_rss(w) for w in stack.workers) / MB, 1),
            })

        def sampler() -> None:
            while not stop.wait(0.5):
                sample()

        sample()
        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        factory = submission_factory(stack.api_port, 1000, args.seed)

        def progress(count: int) -> None:
            submitted[0] = count

        load, result = timed_load(stack, stack.api_port, factory, args, count=orders, expect=202,
                                  rate_name="accepted_per_s", progress=progress)
        submitted[0] = result.requests
        settle = stack.wait_until_settled(result.count(202), args.settle_timeout)
        time.sleep(1.0)  # a couple more samples once idle
        stop.set()
        thread.join()
        sample()
        invariants = check_invariants(stack, result.count(202))
        completion = completion_report(stack, result.first_ok_at) if result.first_ok_at else {}
        redispatched = sweeper_redispatched(stack)

    def first(predicate, key):
        for s in samples:
            if predicate(s):
                return s[key]
        return None

    def summary(key: str, count_key: str) -> dict:
        values = [s[key] for s in samples]
        at_checkpoint = first(lambda s: s[count_key] >= checkpoint, key)
        at_end = first(lambda s: s[count_key] >= orders, key)
        return {"start_mb": values[0], "peak_mb": max(values), "end_mb": values[-1],
                f"after_{checkpoint}_{count_key}_mb": at_checkpoint, f"after_{orders}_{count_key}_mb": at_end,
                "growth_checkpoint_to_end_mb": round(at_end - at_checkpoint, 1)
                if at_end is not None and at_checkpoint is not None else None}

    report = {
        "orders": orders,
        "catalog_latency_ms": args.memory_latency_ms,
        "checkpoint": checkpoint,
        "api": summary("api_rss_mb", "submitted"),
        "workers": summary("workers_rss_mb", "completed"),
        "submission": load,
        "settle": settle,
        "orders_per_s": completion.get("orders_per_s"),
        "sweeper_redispatched": redispatched,
        "invariants": invariants,
        "samples": samples,
        "errors": load["errors"],
    }
    report["ok"] = report["errors"] == 0 and invariants["ok"]
    return report


def import_factory(port: int, lines: int, seed: int, count: int = 10):
    """Requests POST /imports of `lines` lines (cycling over `count` prebuilt ones): import k holds
    orders k*lines... of customer k+1, with that customer's token."""
    host = f"127.0.0.1:{port}"
    prebuilt = [http_request("POST", "/imports", host, json.dumps({"orders": [
        {"customer_id": customer_of(k), "items": order_items(k * lines + n, seed)} for n in range(lines)]}).encode(),
        headers=auth_headers(customer_of(k))) for k in range(count)]
    return lambda i: prebuilt[i % count]


def single_factory(port: int, count: int, seed: int):
    """Requests POST /customers/{customer}/orders (order i's two lines; cycling over `count`)."""
    host = f"127.0.0.1:{port}"
    prebuilt = [http_request("POST", f"/customers/{customer_of(i)}/orders", host, order_body(i, seed),
                             headers=auth_headers(customer_of(i))) for i in range(count)]
    return lambda i: prebuilt[i % count]


def bulk_intake(args) -> dict:
    """Closed loop, no worker running: imports of --import-lines lines at --bulk-clients connections and
    single submissions at --clients, in alternating slices (ABBA...) of --bulk-duration s in all."""
    stack = new_stack(args, "bulk-intake", workers=0, carts=0)
    stack.settings["MAX_UNFINISHED_JOBS"] = str(10**8)  # no worker drains the jobs here
    with stack:
        sides = {"imports": (import_factory(stack.api_port, args.import_lines, args.seed), args.bulk_clients),
                 "singles": (single_factory(stack.api_port, 1000, args.seed), args.clients)}
        warmed = 0
        for (factory, connections), lines in zip(sides.values(), (args.import_lines, 1)):
            warmed += lines * run_load("127.0.0.1", stack.api_port, factory, connections=connections,
                                       count=connections, expect=202).count(202)
        rounds = max(1, min(args.rounds, int(args.bulk_duration)))
        runs, busy, api = {name: [] for name in sides}, {name: 0.0 for name in sides}, {name: 0.0 for name in sides}
        for round_no in range(rounds):
            for name in (list(sides) if round_no % 2 == 0 else list(reversed(sides))):
                factory, connections = sides[name]
                with CpuMeter(stack) as meter:
                    runs[name].append(run_load("127.0.0.1", stack.api_port, factory, connections=connections,
                                               duration=args.bulk_duration / rounds, expect=202))
                busy[name] += meter.result["machine_busy_seconds"]
                api[name] += meter.result["cpu_seconds_by_role"].get("api", 0.0)
        jobs = stack.scalar("SELECT count(*) FROM jobs")
    reports = {}
    for name, lines in (("imports", args.import_lines), ("singles", 1)):
        report = load_report(merge_results(runs[name]), 202, rate_name="requests_per_s")
        orders = report["statuses"].get("202", 0) * lines
        report["accepted_orders_per_s"] = round(orders / report["seconds"], 1) if report["seconds"] else None
        report["machine_cpu_ms_per_order"] = round(busy[name] * 1000 / orders, 3) if orders else None
        report["api_cpu_ms_per_request"] = round(api[name] * 1000 / report["statuses"]["202"], 2) if orders else None
        reports[name] = report
    ratio = (reports["imports"]["accepted_orders_per_s"] / reports["singles"]["accepted_orders_per_s"]
             if reports["singles"]["accepted_orders_per_s"] else None)
    expected = warmed + sum(reports[name]["statuses"].get("202", 0) * lines
                            for name, lines in (("imports", args.import_lines), ("singles", 1)))
    return {**reports, "lines_per_import": args.import_lines, "rounds": rounds,
            "imports_over_singles": round(ratio, 1) if ratio is not None else None,
            "jobs_in_database": jobs, "jobs_expected": expected}


def singles_placing(stack: Stack, args, until) -> tuple[list[str], float]:
    """Single orders (POST /customers/{c}/orders), one every 1/--bulk-singles-rate s until `until()` says
    stop; their job ids and when the first was sent."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=30)
    job_ids, started, index = [], time.time(), 0
    while not until(len(job_ids)):
        customer = customer_of(index)
        connection.request("POST", f"/customers/{customer}/orders", order_body(index, args.seed),
                           {"Content-Type": "application/json", **auth_headers(customer)})
        answer = connection.getresponse()
        body = json.loads(answer.read() or b"{}")
        if answer.status == 202:
            job_ids.append(body["job_id"])
        index += 1
        time.sleep(1 / args.bulk_singles_rate)
    connection.close()
    return job_ids, started


def placing_times(stack: Stack, job_ids: list[str]) -> dict:
    """From each job's creation to its completion in its timeline, in ms; how many needed more than one
    attempt (a product another execution was changing, most often)."""
    rows = stack.rows(
        "SELECT extract(epoch FROM coalesce(min(e.at) FILTER (WHERE e.status = 'completed'), j.updated_at)"
        " - j.created_at), extract(epoch FROM min(e.at) FILTER (WHERE e.event = 'attempt_started') - j.created_at),"
        " j.attempts FROM jobs j LEFT JOIN job_events e ON e.job_id = j.id"
        " WHERE j.id = ANY(CAST(:ids AS uuid[])) AND j.status = 'completed' GROUP BY j.id", ids=job_ids)
    return {"orders": len(job_ids), "completed": len(rows), **summary_ms(float(row[0]) for row in rows),
            "claimed": {"what": "from creation to the first claim", **summary_ms(float(row[1]) for row in rows)},
            "retried": sum(row[2] > 1 for row in rows)}


def big_import(args) -> dict:
    """One import of --big-import lines placed end to end by --workers workers (catalog at --latency-ms),
    while single orders come at --bulk-singles-rate per second; the same single orders on the idle
    stack first."""
    stack = new_stack(args, "bulk-import", carts=0)
    stack.settings.update({"MAX_IMPORT_LINES": str(args.big_import), "MAX_IMPORT_BYTES": str(256 * MB)})
    with stack:
        stack.set_latency(args.latency_ms)
        warmed = warm_every_worker(stack, args, args.big_import, "items")
        idle_ids, _ = singles_placing(stack, args, lambda sent: sent >= args.bulk_idle_singles)
        stack.wait_until_settled(warmed + len(idle_ids), args.settle_timeout)
        # One customer's orders (a B2B portal's upload), with that customer's token.
        body = json.dumps({"orders": [{"customer_id": customer_of(0), "items": order_items(n, args.seed)}
                                      for n in range(args.big_import)]}).encode()
        connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=600)
        with CpuMeter(stack) as meter:
            sent_at = time.time()
            connection.request("POST", "/imports", body, {"Content-Type": "application/json", **auth_headers(customer_of(0))})
            answer = connection.getresponse()
            accepted = json.loads(answer.read() or b"{}")
            answered_at = time.time()
            during_ids, _ = singles_placing(stack, args, lambda sent: answer.status != 202 or stack.scalar(
                "SELECT count(*) FROM jobs WHERE import_id IS NOT NULL AND status IN ('queued', 'processing',"
                " 'retrying')") == 0)
            settle = stack.wait_until_settled(warmed + len(idle_ids) + args.big_import + len(during_ids),
                                              args.settle_timeout)
        connection.close()
        ended = stack.scalar("SELECT extract(epoch FROM max(e.at)) FROM jobs j JOIN job_events e ON e.job_id = j.id"
                             " AND e.status = 'completed' WHERE j.import_id IS NOT NULL")
        placed = stack.scalar("SELECT count(*) FROM jobs WHERE import_id IS NOT NULL AND status = 'completed'")
        report = {
            "lines": args.big_import, "workers": len(stack.workers), "concurrency": args.concurrency,
            "latency_ms": args.latency_ms, "import_status": answer.status,
            "import_answered_s": round(answered_at - sent_at, 2), "import_body_mb": round(len(body) / MB, 2),
            "placed": placed, "settle": settle,
            "orders_per_s": round(placed / (float(ended) - sent_at), 1) if ended and placed else None,
            "sent_to_last_placed_s": round(float(ended) - sent_at, 2) if ended else None,
            "machine": meter.result, "cpu": cpu_per_order(meter.result, placed + len(during_ids)),
            "singles_idle": placing_times(stack, idle_ids), "singles_during_import": placing_times(stack, during_ids),
            "invariants": check_invariants(stack, warmed + len(idle_ids) + args.big_import + len(during_ids)),
            "import_id": accepted.get("import_id"),
        }
    idle, during = report["singles_idle"]["p99_ms"], report["singles_during_import"]["p99_ms"]
    report["singles_p99_during_over_idle"] = round(during / idle, 2) if idle and during else None
    return report


def scenario_bulk(args) -> dict:
    """Imports: intake against single submissions, and a big import placed beside single orders."""
    intake, placement = bulk_intake(args), big_import(args)
    errors = intake["imports"]["errors"] + intake["singles"]["errors"] + (placement["import_status"] != 202)
    return {"intake": intake, "big_import": placement, "errors": errors,
            "ok": errors == 0 and intake["jobs_in_database"] == intake["jobs_expected"]
            and placement["invariants"]["ok"]}


RUNNERS = {"submission": scenario_submission, "polling": scenario_polling, "e2e": scenario_e2e,
           "latency": scenario_latency, "seed": scenario_seed, "busy_submission": scenario_busy_submission,
           "memory": scenario_memory, "bulk": scenario_bulk}


# The flash sale lives in its own module (bench/flash_sale.py) on this module's stacks and measures.
def scenario_flash_sale(args) -> dict:
    return flash_sale.scenario(args, new_stack)


SCENARIOS += ("flash_sale",)
SCENARIO_FLAGS["flash_sale"] = flash_sale.FLAGS
RUNNERS["flash_sale"] = scenario_flash_sale


# ------------------------------------------------------------------------------------ command line

def _csv_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _csv_floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _scenarios(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {unknown}; choose from {','.join(SCENARIOS)}")
    return names


def _sources(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"order sources are {','.join(SOURCES)}, got {text!r}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--scenarios", type=_scenarios, default=list(SCENARIOS), help="comma-separated subset")
    p.add_argument("--server", choices=("gunicorn", "granian"), default="gunicorn",
                   help="the API's server (the bare app and the seed always run under gunicorn)")
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn processes (API, bare app, seed)")
    p.add_argument("--web-threads", type=int, default=4, help="gunicorn threads per process")
    p.add_argument("--workers", type=int, default=2,
                   help="celery worker processes of polling, latency, busy_submission and memory")
    p.add_argument("--concurrency", type=int, default=16, help="threads per celery worker")
    p.add_argument("--clients", type=int, default=64, help="concurrent client connections")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each timed submission/polling run")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of untimed load before a timed run")
    p.add_argument("--rounds", type=int, default=5,
                   help="submission: alternate ours and bare this many times (slices of at least 1 s)")
    p.add_argument("--open-loop-fractions", type=_csv_floats, default=[0.25, 0.5, 0.75],
                   help="submission: then open loop at these fractions of its closed-loop rate, ours and bare")
    p.add_argument("--open-loop-duration", type=float, default=10.0,
                   help="submission: seconds of each open-loop run, per side (two slices each, alternating)")
    p.add_argument("--poll-jobs", type=int, default=1000, help="jobs created (and completed), then polled")
    p.add_argument("--orders", type=int, default=1000, help="orders of each e2e run; customers with a cart")
    p.add_argument("--e2e-warmup", type=int, default=64,
                   help="orders of each warm-up burst, placed and settled before an e2e run is measured, burst "
                        "after burst until every worker process has placed some: a fresh process's first "
                        "executions compile their SQL statements and fill their pools, a one-time cost")
    p.add_argument("--e2e-sources", type=_sources, default=list(SOURCES),
                   help="e2e order sources: cart (no body: the customer's cart), items (two lines in the body)")
    p.add_argument("--e2e-workers", type=_csv_ints, default=[1, 2, 4], help="e2e worker process counts")
    p.add_argument("--latency-ms", type=float, default=20.0, help="catalog/cart latency of e2e, latency, seed")
    p.add_argument("--latency-orders", type=int, default=200, help="orders of the single-order latency scenario")
    p.add_argument("--poll-interval-ms", type=float, default=5.0,
                   help="latency scenario: pause between two polls of the job")
    p.add_argument("--seed-clients", type=_csv_ints, default=[1, 16], help="client counts of the seed runs")
    p.add_argument("--seed-duration", type=float, default=20.0, help="seconds of each seed run")
    p.add_argument("--busy-latencies", type=_csv_floats, default=[0.0, 50.0],
                   help="catalog latencies (ms) of the busy_submission runs")
    p.add_argument("--busy-duration", type=float, default=5.0, help="seconds of each busy_submission run")
    p.add_argument("--memory-orders", type=int, default=10_000)
    p.add_argument("--memory-latency-ms", type=float, default=0.0)
    flash_sale.add_arguments(p)
    p.add_argument("--import-lines", type=int, default=1000, help="bulk: lines of each import of the closed loop")
    p.add_argument("--bulk-clients", type=int, default=8, help="bulk: connections posting imports")
    p.add_argument("--bulk-duration", type=float, default=10.0, help="bulk: seconds of imports and singles, alternating")
    p.add_argument("--big-import", type=int, default=20_000, help="bulk: lines of the import placed end to end")
    p.add_argument("--bulk-singles-rate", type=float, default=10.0,
                   help="bulk: single orders per second submitted while it is placed (and idle, before)")
    p.add_argument("--bulk-idle-singles", type=int, default=100, help="bulk: single orders of the idle run")
    p.add_argument("--settle-timeout", type=float, default=600.0, help="longest wait for jobs to finish")
    p.add_argument("--access-log", action="store_true", help="gunicorn access log on (production default)")
    p.add_argument("--seed", type=int, default=7, help="random seed of the orders' lines")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--log-dir", type=Path, default=None, help="default test-artifacts/bench/<time>")
    return p


def _flag_text(name: str, value) -> list[str]:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag] if value else []
    if isinstance(value, list):
        return [flag, ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)]
    if isinstance(value, float):
        return [flag, f"{value:g}"]
    return [flag, str(value)]


def reproduce_command(args, scenarios: list[str], **overrides) -> str:
    """The command line that runs exactly these scenarios with exactly these settings (`overrides`
    narrow a flag to the one run a result is about); its JSON goes beside --out."""
    values = {**vars(args), **overrides}
    names = list(COMMON_FLAGS)
    for scenario in scenarios:
        names += [n for n in SCENARIO_FLAGS[scenario] if n not in names]
    argv = [python_command(), "-m", "bench.run", "--scenarios", ",".join(scenarios)]
    for name in names:
        argv += _flag_text(name, values[name])
    out = args.out.with_name(f"{args.out.stem}-{'-'.join(scenarios)}.json")
    try:
        out = out.resolve().relative_to(ROOT)
    except ValueError:
        pass
    argv += ["--out", str(out)]
    return shlex.join(argv)


def git_state() -> dict:
    """The commit benchmarked, and whether the work tree differed from it."""
    def git(*argv):
        try:
            return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD") or None, "modified_tracked_files": None if status is None
            else len(status.splitlines())}


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def compare(results: dict, args) -> dict:
    """Figures that need two scenarios of the same run: ours against the seed and the bare endpoint.
    Ours is the e2e cart run with --workers workers (else the first e2e run)."""
    runs = (results.get("e2e") or {}).get("runs", [])
    ours = next((r for r in runs if r["source"] == "cart" and r["workers"] == args.workers), runs[0] if runs else None)
    out = {}
    if ours and ours.get("orders_per_s"):
        out["ours_e2e_run"] = f"{ours['source']}, {ours['workers']} workers"
        for seed in (results.get("seed") or {}).get("runs", []):
            if seed.get("orders_per_s"):
                clients = f"{seed['clients']} client{'s' if seed['clients'] != 1 else ''}".replace(" ", "_")
                out[f"ours_orders_per_s_over_seed_at_{clients}"] = round(
                    ours["orders_per_s"] / seed["orders_per_s"], 2)
        bare = (results.get("submission") or {}).get("bare", {}).get("machine_cpu_ms_per_request")
        if bare and ours.get("cpu", {}).get("machine_ms"):
            out["machine_cpu_per_order_in_bare_requests"] = round(ours["cpu"]["machine_ms"] / bare, 1)
    latency = results.get("latency") or {}
    seed_one = next((r for r in (results.get("seed") or {}).get("runs", []) if r["clients"] == 1), None)
    if latency.get("p50_ms") and seed_one and seed_one.get("p50_ms"):
        out["single_order_p50_ours_over_seed_at_1_client"] = round(latency["p50_ms"] / seed_one["p50_ms"], 2)
    return out


def table(results: dict, comparison: dict | None = None) -> str:
    """A compact table of the headline numbers."""
    rows: list[tuple[str, str, str]] = []
    s = results.get("submission")
    if s and "ours" in s:
        o, b = s["ours"], s["bare"]
        rows += [
            ("submission", "accepted/s (no worker running)", f"{_fmt(o['accepted_per_s'])}"),
            ("", "latency p50 / p99 / max ms", f"{_fmt(o['p50_ms'])} / {_fmt(o['p99_ms'])} / {_fmt(o['max_ms'])}"),
            ("", "errors (non-202)", str(o["errors"])),
            ("", "bare endpoint 202/s", f"{_fmt(b['accepted_per_s'])}  (p99 {_fmt(b['p99_ms'])} ms)"),
            ("", "ours / bare", f"{_fmt(s['ours_fraction_of_bare'] * 100 if s['ours_fraction_of_bare'] else None)} %"),
            ("", "machine CPU ms per request ours / bare",
             f"{_fmt(o['machine_cpu_ms_per_request'], 2)} / {_fmt(b['machine_cpu_ms_per_request'], 2)}"),
        ]
        for r in s.get("open_loop", []):
            rows.append(("", f"open loop {r['fraction_of_capacity'] * 100:g} % ({_fmt(r['offered_per_s'])}/s) "
                             "p50/p99/p99.9 ms ours | bare",
                         " / ".join(_fmt(r["ours"][k]) for k in ("p50_ms", "p99_ms", "p999_ms")) + "  |  "
                         + " / ".join(_fmt(r["bare"][k]) for k in ("p50_ms", "p99_ms", "p999_ms"))
                         + f"  ({_fmt(r['ours_p99_over_bare'])} x)"))
    p = results.get("polling")
    if p and "requests_per_s" in p:
        rows += [("polling", "GET /jobs/{id} req/s", _fmt(p["requests_per_s"])),
                 ("", "latency p50 / p99 ms", f"{_fmt(p['p50_ms'])} / {_fmt(p['p99_ms'])}"),
                 ("", "errors", str(p["errors"]))]
    e = results.get("e2e")
    for r in (e or {}).get("runs", []):
        c, cpu = r.get("completion", {}), r.get("cpu", {})
        rows += [(f"e2e {r['source']}, {r['workers']} worker(s)", "orders completed/s",
                  f"{_fmt(r['orders_per_s'])}  ({r['orders']} orders @ {r['latency_ms']:g} ms; accepted "
                  f"{_fmt(r['submission']['accepted_per_s'])}/s)"),
                 ("", "submit->complete p50 / p99 s", " / ".join(_fmt(c.get(k), 2) for k in ("p50_s", "p99_s"))),
                 ("", "CPU ms/order: machine / service / peers",
                  f"{_fmt(cpu.get('machine_ms'))} / {_fmt(cpu.get('service_ms'))} / {_fmt(cpu.get('peers_ms'))}"
                  f"  (others {r['machine']['others_cores']} cores)"),
                 ("", "  by component", ", ".join(f"{k} {v:g}" for k, v in cpu.get("by_component_ms", {}).items())),
                 ("", "errors; invariants", f"{r['errors']}; {'OK' if r['invariants']['ok'] else 'BROKEN'}")]
    lat = results.get("latency")
    if lat and "p50_ms" in lat:
        rows += [(f"latency (1 client, cart, {lat['latency_ms']:g} ms)", "submit->seen completed p50 / p99 ms",
                  f"{_fmt(lat['p50_ms'])} / {_fmt(lat['p99_ms'])}  (polled every {lat['poll_interval_ms']:g} ms)"),
                 ("", "server-side p50 / p99 ms",
                  f"{_fmt(lat['server_side']['p50_ms'])} / {_fmt(lat['server_side']['p99_ms'])}"),
                 ("", "errors; invariants", f"{lat['errors']}; {'OK' if lat['invariants']['ok'] else 'BROKEN'}")]
    for r in (results.get("seed") or {}).get("runs", []):
        rows += [(f"seed, {r['clients']} client(s)", "orders/s", f"{_fmt(r['orders_per_s'])}  (@ {r['latency_ms']:g} ms)"),
                 ("", "order latency p50 / p99 ms", f"{_fmt(r['p50_ms'])} / {_fmt(r['p99_ms'])}"),
                 ("", "failed requests; units lost; products corrupted",
                  f"{r['failed_requests']}; {r['units_lost_to_get_put_races']}; {r['products_with_corrupted_stock']}")]
    for r in (results.get("busy_submission") or {}).get("runs", []):
        rows.append(("busy submission", f"p99 with {r['workers_running']} workers, catalog {r['catalog_latency_ms']:g} ms",
                     f"{_fmt(r['p99_ms'])} ms  ({_fmt(r['accepted_per_s'])}/s, {r['errors']} errors)"))
    m = results.get("memory")
    if m and "api" in m:
        for who in ("api", "workers"):
            x = m[who]
            keys = [k for k in x if k.startswith("after_")]
            rows.append(("memory" if who == "api" else "", f"{who} RSS MB start/peak/end",
                         f"{x['start_mb']} / {x['peak_mb']} / {x['end_mb']}"))
            rows.append(("", f"{who} RSS MB " + " vs ".join(k.replace('after_', 'after ').replace('_mb', '')
                                                          .replace('_', ' ') for k in keys),
                         " vs ".join(_fmt(x[k]) for k in keys)))
        rows.append(("", "orders/s; sweeper re-dispatches", f"{_fmt(m.get('orders_per_s'))}; "
                                                                  f"{_fmt(m.get('sweeper_redispatched'))}"))
        rows.append(("", "errors; invariants", f"{m['errors']}; {'OK' if m['invariants']['ok'] else 'BROKEN'}"))
    if (results.get("flash_sale") or {}).get("ours"):
        rows += flash_sale.table_rows(results["flash_sale"])
    bulk = results.get("bulk")
    if bulk and "intake" in bulk:
        i, b = bulk["intake"], bulk["big_import"]
        idle, during = b["singles_idle"], b["singles_during_import"]
        rows += [("bulk", f"accepted orders/s: imports of {i['lines_per_import']} / singles",
                  f"{_fmt(i['imports']['accepted_orders_per_s'])} / {_fmt(i['singles']['accepted_orders_per_s'])}"
                  f"  ({_fmt(i['imports_over_singles'])} x)"),
                 ("", f"import of {b['lines']} placed: orders/s; machine CPU ms/order",
                  f"{_fmt(b['orders_per_s'])}; {_fmt(b['cpu'].get('machine_ms'))}  ({b['workers']} workers @ "
                  f"{b['latency_ms']:g} ms)"),
                 ("", "single orders placing p50 / p99 ms: idle; during",
                  f"{_fmt(idle['p50_ms'])} / {_fmt(idle['p99_ms'])}; {_fmt(during['p50_ms'])} / "
                  f"{_fmt(during['p99_ms'])}  ({_fmt(b['singles_p99_during_over_idle'], 2)} x)"),
                 ("", "errors; invariants", f"{bulk['errors']}; {'OK' if b['invariants']['ok'] else 'BROKEN'}")]
    for name, value in (comparison or {}).items():
        rows.append(("compared" if name == next(iter(comparison)) else "", name.replace("_", " "), _fmt(value, 2)))
    for name, r in results.items():
        if isinstance(r, dict) and "exception" in r:
            rows.append((name, "FAILED", r["exception"].splitlines()[-1][:80]))
    w0 = max((len(r[0]) for r in rows), default=0)
    w1 = max((len(r[1]) for r in rows), default=0)
    return "\n".join(f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows)


def _exit_on_signal(signum, _frame) -> None:
    """SIGTERM (and SIGINT, even when started in the background with it ignored) unwinds through
    every `with Stack`, so the processes and the database the bench started are removed."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    args = parser().parse_args(argv)
    args.log_dir = args.log_dir or ROOT / "test-artifacts" / "bench" / time.strftime("%Y%m%d-%H%M%S")
    started = time.time()
    output = {
        "meta": {
            "command": shlex.join([python_command(), "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "python": platform.python_version(),
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
            "load_generator": "bench/loadgen.py (asyncio keep-alive HTTP/1.1, in the bench process)",
            "git": git_state(),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "logs": str(args.log_dir),
        },
        "scenarios": {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    failed = False
    for name in args.scenarios:
        print(f"== {name} ...", flush=True)
        scenario_started = time.monotonic()
        try:
            result = RUNNERS[name](args)
        except Exception:  # noqa: BLE001 - report it and go on with the other scenarios
            result = {"exception": traceback.format_exc(), "ok": False}
            print(result["exception"], file=sys.stderr, flush=True)
        result["seconds"] = round(time.monotonic() - scenario_started, 1)
        result["stacks"] = [{"name": st.name, "workers": st.n_workers, "startup_s": getattr(st, "startup_seconds", None),
                             "logs": str(st.log_dir)} for st in STACKS]
        STACKS.clear()
        result["command"] = reproduce_command(args, [name])
        output["scenarios"][name] = result
        failed |= not result.get("ok", False)
        print(f"   {name}: {'ok' if result.get('ok') else 'NOT OK'} in {result['seconds']} s", flush=True)
        output["meta"]["seconds"] = round(time.time() - started, 1)
        args.out.write_text(json.dumps(output, indent=2))
    output["compared"] = compare(output["scenarios"], args)
    output["meta"]["seconds"] = round(time.time() - started, 1)
    output["ok"] = not failed
    args.out.write_text(json.dumps(output, indent=2))
    print()
    print(table(output["scenarios"], output["compared"]))
    print(f"\n{len(args.scenarios)} scenario(s) in {output['meta']['seconds']} s; results in {args.out}")
    if failed:
        print("SOME SCENARIOS HAD ERRORS OR BROKEN INVARIANTS (see the JSON)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

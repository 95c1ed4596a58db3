"""The flash sale: many customers racing for little stock of one product, ours and the seed's.

    python -m bench.run --scenarios flash_sale

One product with --sale-stock units, --sale-customers customers each ordering one unit of it
from their cart (no body), --clients connections submitting in a closed loop, the catalog
adding --latency-ms to every call. Every batch a worker claims wants the same product, so
every batch takes the same advisory lock: this is the case the service's locks and ledger
exist for, and the one the seed (bench/seed_port.py) gets wrong.

Ours: the workers are warmed first on another product (customers after the sale's, their
carts holding product WARM_PRODUCT), so the sale measures warm processes and leaves the
sale's product alone. Then the sale, checked: every submission answered 202, exactly the
stock placed, the rest rejected `insufficient_stock`, the catalog at 0, and the ledger
(inventory_moves and stock_writes, applied) agreeing with the catalog and with the peer's
own count of applied writes. Measured: decided orders per second (placed plus rejected, from
the first submission to the last decision, decisions as the jobs' timelines record them),
how long after the last submission the last order was decided, and the whole machine's CPU
per decided order (as the e2e scenario measures it).

The seed: the same sale at --sale-seed-clients connections on a stack of its own, each
customer once: the orders it claimed (201), the units it took from the catalog, the units
lost to its GET/PUT races (claimed minus taken) and the units oversold (claimed beyond the stock).
"""
from __future__ import annotations

import time

from bench.loadgen import http_request, run_load
from bench.stackrun import CpuMeter, Stack, auth_headers, customer_of

SALE_PRODUCT = 1
WARM_PRODUCT = 2
FLAGS = ("sale_customers", "sale_stock", "sale_seed_clients", "latency_ms", "e2e_warmup", "settle_timeout")


def add_arguments(p) -> None:
    p.add_argument("--sale-customers", type=int, default=5000, help="flash_sale: customers, one unit each")
    p.add_argument("--sale-stock", type=int, default=1000, help="flash_sale: units of the one product")
    p.add_argument("--sale-seed-clients", type=int, default=16, help="flash_sale: connections of the seed's sale")


def sale_peers(customers: int, stock: int, warm_carts: int = 0) -> dict:
    """The reset body of a sale: the product with `stock` units, customers 1..`customers` each with
    one unit of it in their cart; then `warm_carts` customers ordering a product of ample stock."""
    return {
        "products": [{"id": SALE_PRODUCT, "name": "Flash sale", "price": 9.5, "quantity": stock},
                     {"id": WARM_PRODUCT, "name": "Warm-up", "price": 1.0, "quantity": 10**7}],
        "carts": [{"customer_id": customer_of(i), "status": "Open",
                   "items": [{"product_id": SALE_PRODUCT if i < customers else WARM_PRODUCT, "quantity": 1}]}
                  for i in range(customers + warm_carts)],
    }


def cart_orders(port: int, customers: range):
    """POST /orders/{customer} without a body (the customer's cart), one per customer of `customers`."""
    host = f"127.0.0.1:{port}"
    prebuilt = [http_request("POST", f"/orders/{customer_of(i)}", host, headers=auth_headers(customer_of(i)))
                for i in customers]
    return lambda i: prebuilt[i]


def decisions(stack: Stack, since: float) -> list[tuple[float, float, str, str | None]]:
    """(created, decided, status, error code) of every place job created since `since` (epoch seconds);
    decided is when its timeline first shows it completed or rejected (None while it is not)."""
    return [(float(created), None if decided is None else float(decided), status, code)
            for created, decided, status, code in stack.rows(
                "SELECT extract(epoch FROM j.created_at), extract(epoch FROM min(e.at)), j.status, j.error->>'code'"
                " FROM jobs j LEFT JOIN job_events e ON e.job_id = j.id AND e.status IN ('completed', 'rejected')"
                " WHERE j.kind = 'place' AND j.created_at >= to_timestamp(:since) GROUP BY j.id", since=since)]


def ledger_check(stack: Stack, stock: int) -> dict:
    """The sale's product in the catalog, the ledger and the peer's write log, which must all agree."""
    final = stack.peers_state()["products"][str(SALE_PRODUCT)]["quantity"]
    peer_writes = stack.peers_stats()["writes"].get(str(SALE_PRODUCT), 0)
    moved = stack.scalar(
        "SELECT coalesce(sum(CASE WHEN kind = 'take' THEN quantity ELSE -quantity END), 0) FROM inventory_moves"
        " WHERE product_id = :p AND state = 'applied'", p=SALE_PRODUCT)
    writes = stack.rows("SELECT quantity_before, quantity_after FROM stock_writes"
                        " WHERE product_id = :p AND state = 'applied' ORDER BY id", p=SALE_PRODUCT)
    void = stack.scalar("SELECT count(*) FROM stock_writes WHERE product_id = :p AND state = 'void'", p=SALE_PRODUCT)
    sold = stack.scalar("SELECT coalesce(sum(i.quantity), 0) FROM order_items i JOIN orders o ON o.id = i.order_id"
                        " WHERE i.product_id = :p AND o.status = 'Ordered'", p=SALE_PRODUCT)
    pending = stack.scalar("SELECT (SELECT count(*) FROM inventory_moves WHERE state = 'pending')"
                           " + (SELECT count(*) FROM stock_writes WHERE state = 'pending')")
    # Each applied write starts where the one before it ended: no write was based on a stale quantity.
    chained = all(after == before for (_, after), (before, _) in zip(writes, writes[1:]))
    return {
        "catalog_final": final,
        "catalog_taken": stock - final,
        "units_in_orders": int(sold),
        "ledger_moves_applied_net": int(moved),
        "ledger_writes_applied": len(writes),
        "ledger_writes_net": sum(before - after for before, after in writes),
        "ledger_writes_chained": chained,
        "ledger_writes_void": void,
        "peer_writes_applied": peer_writes,
        "pending_ledger_rows": pending,
    }


def ours(args, new_stack) -> dict:
    """The sale on our service: warm up on another product, then the sale, measured and checked."""
    from bench.run import WARM_UP_BURSTS, cpu_per_order, load_report, warm_every_worker  # bench.run imports us

    customers, stock = args.sale_customers, args.sale_stock
    warm_carts = args.e2e_warmup * WARM_UP_BURSTS
    with new_stack(args, "flash-sale", carts=0) as stack:
        stack.reset_peers(sale_peers(customers, stock, warm_carts))
        stack.set_latency(args.latency_ms)
        warmed = warm_every_worker(stack, args, customers, "cart")
        measured_from = time.time()
        with CpuMeter(stack) as whole:
            result = run_load("127.0.0.1", stack.api_port, cart_orders(stack.api_port, range(customers)),
                              connections=args.clients, count=customers, expect=202)
            settle = stack.wait_until_settled(result.count(202) + warmed, args.settle_timeout)
        rows = decisions(stack, measured_from)
        ledger = ledger_check(stack, stock)
        duplicates = stack.scalar(
            "SELECT count(*) FROM (SELECT job_id FROM orders GROUP BY job_id HAVING count(*) > 1) d")
    submission = load_report(result, 202, rate_name="accepted_per_s")
    placed = sum(1 for row in rows if row[2] == "completed")
    rejected = sum(1 for row in rows if row[2] == "rejected" and row[3] == "insufficient_stock")
    decided = [row for row in rows if row[1] is not None]
    first_submission = min((row[0] for row in rows), default=None)
    last_submission = max((row[0] for row in rows), default=None)
    last_decision = max((row[1] for row in decided), default=None)
    window = last_decision - first_submission if decided else None
    decided_per_s = round(len(decided) / window, 1) if window else None
    accepted_per_s = submission["accepted_per_s"]
    invariants = {
        "every_submission_202": result.count(202) == customers == result.requests,
        "placed_equals_stock": placed == stock,
        "rest_rejected_insufficient_stock": rejected == customers - stock,
        "catalog_at_zero": ledger["catalog_final"] == 0,
        "orders_hold_what_the_catalog_lost": ledger["units_in_orders"] == ledger["catalog_taken"],
        "ledger_agrees_with_catalog": ledger["ledger_moves_applied_net"] == ledger["ledger_writes_net"]
        == ledger["catalog_taken"] and ledger["ledger_writes_chained"],
        # The peer counts each applied write of the ledger, and the fences that settled void writes
        # (placement.inventory._settle: the unchanged quantity written back), at most one each.
        "ledger_agrees_with_peer_write_log": ledger["ledger_writes_applied"] <= ledger["peer_writes_applied"]
        <= ledger["ledger_writes_applied"] + ledger["ledger_writes_void"],
        "no_pending_ledger_rows": ledger["pending_ledger_rows"] == 0,
        "no_duplicate_orders": duplicates == 0,
    }
    return {
        "customers": customers, "stock": stock, "clients": args.clients, "latency_ms": args.latency_ms,
        "workers": len(stack.workers), "concurrency": args.concurrency, "warm_up_orders": warmed,
        "submission": submission, "settle": settle,
        "placed": placed, "rejected_insufficient_stock": rejected,
        "other_outcomes": len(rows) - placed - rejected,
        "decided": len(decided),
        "decided_per_s": decided_per_s,
        "first_submission_to_last_decision_s": round(window, 2) if window else None,
        "last_decision_after_last_submission_s": round(last_decision - last_submission, 2) if decided else None,
        "decided_over_accepted_per_s": round(decided_per_s / accepted_per_s, 3)
        if decided_per_s and accepted_per_s else None,
        "targets": {"last decision within 1 s of the last submission": 1.0,
                    "decided/s at least this share of accepted/s": 0.9},
        "ledger": ledger,
        "duplicate_orders": duplicates,
        "machine": whole.result,
        "cpu": cpu_per_order(whole.result, len(decided)),
        "invariants": {**invariants, "ok": all(invariants.values())},
        "errors": submission["errors"],
    }


def seed(args, new_stack) -> dict:
    """The same sale on the seed at --sale-seed-clients connections, each customer once."""
    from bench.run import start_seed  # bench.run imports us

    customers, stock, clients = args.sale_customers, args.sale_stock, args.sale_seed_clients
    with new_stack(args, f"flash-sale-seed-{clients}c", workers=0, carts=0) as stack:
        port, argv = start_seed(stack)
        stack.reset_peers(sale_peers(customers, stock))
        stack.set_latency(args.latency_ms)
        with CpuMeter(stack) as meter:
            result = run_load("127.0.0.1", port, cart_orders(port, range(customers)), connections=clients,
                              count=customers, expect=201)
        final = stack.peers_state()["products"][str(SALE_PRODUCT)]["quantity"]
        orders = stack.scalar("SELECT count(*) FROM seed.orders")
        units = stack.scalar("SELECT coalesce(sum(quantity), 0) FROM seed.order_items WHERE product_id = :p",
                             p=SALE_PRODUCT)
    claimed = result.count(201)
    return {
        "customers": customers, "stock": stock, "clients": clients, "latency_ms": args.latency_ms,
        "gunicorn_argv": argv[1:],
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "orders_claimed": claimed,
        "orders_in_database": orders,
        "units_in_orders": int(units),
        "units_taken_from_catalog": stock - final,
        "units_lost_to_get_put_races": int(units) - (stock - final),
        "units_oversold": max(0, int(units) - stock),
        "seconds": round(result.elapsed, 2),
        "answers_per_s": round(result.requests / result.elapsed, 1) if result.elapsed else None,
        "machine_cpu_ms_per_answer": round(meter.result["machine_busy_seconds"] * 1000 / result.requests, 2)
        if result.requests else None,
    }


def scenario(args, new_stack) -> dict:
    """Ours, then the seed's, each on a stack of its own (`new_stack` is bench.run's)."""
    report = {"ours": ours(args, new_stack)}
    if args.sale_seed_clients > 0:
        report["seed"] = seed(args, new_stack)
    report["errors"] = report["ours"]["errors"]
    report["ok"] = report["errors"] == 0 and report["ours"]["invariants"]["ok"]
    return report


def table_rows(result: dict) -> list[tuple[str, str, str]]:
    """The scenario's lines of bench.run's table."""
    o, rows = result["ours"], []
    rows += [
        ("flash sale", "customers / stock / clients",
         f"{o['customers']} / {o['stock']} / {o['clients']}  (catalog {o['latency_ms']:g} ms, {o['workers']} workers)"),
        ("", "placed / rejected insufficient_stock / other",
         f"{o['placed']} / {o['rejected_insufficient_stock']} / {o['other_outcomes']}"),
        ("", "accepted/s; decided/s (share)",
         f"{o['submission']['accepted_per_s']}; {o['decided_per_s']} ({o['decided_over_accepted_per_s']})"),
        ("", "last decision after last submission s", str(o["last_decision_after_last_submission_s"])),
        ("", "CPU ms/decided order: machine / service",
         f"{o['cpu'].get('machine_ms')} / {o['cpu'].get('service_ms')}  (others {o['machine']['others_cores']} cores)"),
        ("", "errors; invariants", f"{o['errors']}; {'OK' if o['invariants']['ok'] else 'BROKEN'}"),
    ]
    s = result.get("seed")
    if s:
        rows += [(f"flash sale, seed {s['clients']} clients", "orders claimed / units taken / lost / oversold",
                  f"{s['orders_claimed']} / {s['units_taken_from_catalog']} / {s['units_lost_to_get_put_races']}"
                  f" / {s['units_oversold']}  ({s['answers_per_s']} answers/s)")]
    return rows

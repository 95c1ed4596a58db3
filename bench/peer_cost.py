"""CPU per peer call: what the reference peers cost the machine for each catalog GET and PUT.

    python -m bench.peer_cost                       # 5 s of GETs, then of PUTs, at 16 connections
    python -m bench.peer_cost --seconds 10 --connections 64

The peers stand in for services on other machines but share this machine's
cores with the service, so their cost per call is taken out of what the
benchmarks measure. This starts the peers as every stack does
(`devstack.stack.start_peers`) and `bench/bare_peer.py` (the same server with
no state: the floor), loads each from this process with `bench/loadgen.py`, and
reads the server's own CPU time (user + system, from /proc) before and after:
CPU microseconds per answered call. The load generator's CPU is not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.loadgen import http_request, run_load
from devstack import stack as procs

PRODUCTS = 100


def server_cpu_seconds(proc: procs.Proc) -> float:
    """User + system CPU of the process and its children so far."""
    root = psutil.Process(proc.popen.pid)
    total = 0.0
    for member in [root, *root.children(recursive=True)]:
        times = member.cpu_times()
        total += times.user + times.system
    return total


def calls(port: int, kind: str) -> list[bytes]:
    """One request per product: a GET, or a PUT of the whole product with a new quantity (no If-Match)."""
    host = f"127.0.0.1:{port}"
    if kind == "GET":
        return [http_request("GET", f"/products/{p}", host) for p in range(1, PRODUCTS + 1)]
    return [http_request("PUT", f"/products/{p}", host, json.dumps(
        {"id": p, "name": f"Product {p}", "price": 1.5, "quantity": 900}).encode()) for p in range(1, PRODUCTS + 1)]


def measure(proc: procs.Proc, port: int, kind: str, seconds: float, connections: int) -> dict:
    """Load one server with one kind of call; its CPU per call and its rate."""
    prebuilt = calls(port, kind)

    def factory(i):
        return prebuilt[i % PRODUCTS]

    run_load("127.0.0.1", port, factory, connections=connections, duration=min(1.0, seconds), expect=200)  # warm up
    before = server_cpu_seconds(proc)
    result = run_load("127.0.0.1", port, factory, connections=connections, duration=seconds, expect=200)
    spent = server_cpu_seconds(proc) - before
    ok = result.count(200)
    return {"calls": result.requests, "errors": result.requests - ok,
            "calls_per_s": round(result.requests / result.elapsed) if result.elapsed else None,
            "server_cpu_us_per_call": round(spent / result.requests * 1e6, 1) if result.requests else None,
            "client_cpu_us_per_call": round(result.client_cpu_seconds / result.requests * 1e6, 1)
            if result.requests else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed load per server and kind of call")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections of the load")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="peer-cost-"))
    env = {**os.environ, "REFPEERS_SEED": "demo", "PYTHONUNBUFFERED": "1"}
    report = {"command": shlex.join([sys.executable, "-m", "bench.peer_cost", *(sys.argv[1:] if argv is None
                                                                                  else argv)]),
              "load_avg_1m_before": round(psutil.getloadavg()[0], 2), "servers": {}}
    for name in ("refpeers", "bare_peer"):
        port = procs.free_port()
        if name == "refpeers":
            proc = procs.start_peers(port, env, log_dir)
        else:
            proc = procs.Proc("bare_peer", [sys.executable, "-m", "bench.bare_peer", "--port", str(port)], env,
                              log_dir)
            proc.wait_for_http(f"http://127.0.0.1:{port}/products/1")
        try:
            report["servers"][name] = {kind: measure(proc, port, kind, args.seconds, args.connections)
                                       for kind in ("GET", "PUT")}
        finally:
            proc.stop()
        time.sleep(0.5)
    print(json.dumps(report, indent=2))
    for name, kinds in report["servers"].items():
        for kind, numbers in kinds.items():
            print(f"{name:<10} {kind:<4} {numbers['server_cpu_us_per_call']:>7} µs CPU per call  "
                  f"({numbers['calls_per_s']}/s, {numbers['errors']} errors)", file=sys.stderr)
    errors = sum(numbers["errors"] for kinds in report["servers"].values() for numbers in kinds.values())
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

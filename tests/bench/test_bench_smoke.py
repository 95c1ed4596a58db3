"""`python -m bench.run` end to end at tiny sizes: every scenario runs and reports numbers.

Speed is never asserted here (the machine is small and may be shared); only
that each scenario produced its numbers, that none of our requests failed and
that every invariant held.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.postgres import PrivatePostgres

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("submission", "polling", "e2e", "latency", "seed", "busy_submission", "memory", "flash_sale", "bulk")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture()
def own_postgres(tmp_path):
    """A PostgreSQL of the run's own: the suite's other stacks share the machine's, and its 100 connections."""
    server = PrivatePostgres(tmp_path / "postgres")
    yield server.url
    server.stop()


@pytest.mark.timeout(540)
def test_every_scenario_reports_numbers_without_errors(tmp_path, own_postgres):
    out = tmp_path / "bench.json"
    # Few worker threads: each holds a PostgreSQL connection, and the server may be shared with other runs.
    argv = [sys.executable, "-m", "bench.run",
            "--duration", "1", "--warmup", "0.3", "--open-loop-duration", "1", "--poll-jobs", "30", "--orders", "60", "--e2e-warmup", "4", "--concurrency", "4",
            "--e2e-workers", "1,2", "--latency-orders", "5", "--seed-clients", "1,16", "--seed-duration", "1",
            "--busy-latencies", "0,50", "--busy-duration", "1", "--memory-orders", "150", "--settle-timeout", "120",
            "--sale-customers", "80", "--sale-stock", "20", "--sale-seed-clients", "16",
            "--import-lines", "20", "--bulk-clients", "2", "--bulk-duration", "2", "--big-import", "200",
            "--bulk-idle-singles", "5",
            "--out", str(out), "--log-dir", str(tmp_path / "logs")]
    run = subprocess.run(argv, cwd=ROOT, env={**os.environ, "DATABASE_URL": own_postgres}, capture_output=True,
                         text=True, timeout=520)
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    scenarios = report["scenarios"]
    assert set(scenarios) == set(SCENARIOS), run.stderr[-3000:]
    failed = {name: s.get("exception", "")[-1500:] for name, s in scenarios.items() if "exception" in s}
    assert not failed, failed

    for name, scenario in scenarios.items():
        assert scenario["errors"] == 0, (name, scenario)
        assert scenario["command"].split()[1:3] == ["-m", "bench.run"], scenario["command"]
        assert f"--scenarios {name}" in scenario["command"]

    submission = scenarios["submission"]
    for side in ("ours", "bare"):
        assert submission[side]["accepted_per_s"] > 0
        assert all(_number(submission[side][k]) for k in ("p50_ms", "p99_ms", "max_ms", "machine_cpu_ms_per_request"))
    assert _number(submission["ours_fraction_of_bare"])
    assert submission["ours"]["jobs_in_database"] >= submission["ours"]["statuses"]["202"]
    assert [r["fraction_of_capacity"] for r in submission["open_loop"]] == [0.25, 0.5, 0.75]
    for open_loop in submission["open_loop"]:
        assert open_loop["offered_per_s"] > 0 and _number(open_loop["ours_p99_over_bare"])
        for side in ("ours", "bare"):
            assert open_loop[side]["errors"] == 0 and open_loop[side]["requests"] > 0
            assert all(_number(open_loop[side][k]) for k in ("p50_ms", "p99_ms", "p999_ms"))

    polling = scenarios["polling"]
    assert polling["requests_per_s"] > 0 and _number(polling["p99_ms"]) and polling["job_ids"] == 30

    runs = scenarios["e2e"]["runs"]
    assert [(r["source"], r["workers"]) for r in runs] == [("cart", 1), ("cart", 2), ("items", 1), ("items", 2)]
    for e2e in runs:
        assert e2e["completed"] == 60 and e2e["orders_per_s"] > 0
        assert all(_number(e2e["completion"][k]) for k in ("p50_s", "p90_s", "p99_s", "max_s"))
        cpu = e2e["cpu"]
        assert cpu["machine_ms"] > cpu["service_ms"] > 0 and cpu["peers_ms"] > 0
        assert all(cpu["by_component_ms"][part] > 0 for part in ("workers", "postgres", "api", "peers", "bench"))
        assert e2e["invariants"]["ok"], e2e["invariants"]
        assert e2e["invariants"]["non_completed_jobs"] == 0
        assert e2e["invariants"]["products_mismatched"] == 0 and e2e["invariants"]["products_below_zero"] == 0
        assert f"--e2e-sources {e2e['source']} --e2e-workers {e2e['workers']}" in e2e["command"]

    latency = scenarios["latency"]
    assert latency["outcomes"] == {"completed": 5} and latency["invariants"]["ok"]
    assert all(_number(latency[k]) for k in ("p50_ms", "p99_ms"))
    assert _number(latency["server_side"]["p50_ms"])

    seed = scenarios["seed"]["runs"]
    assert [r["clients"] for r in seed] == [1, 16]
    for one in seed:
        assert one["orders_per_s"] > 0 and _number(one["p50_ms"]) and _number(one["p99_ms"])
        assert one["orders_in_database"] > 0
        assert all(_number(one[k]) for k in ("failed_requests", "units_lost_to_get_put_races",
                                              "products_with_corrupted_stock", "products_oversold"))
        assert f"--seed-clients {one['clients']}" in one["command"]
    compared = report["compared"]
    assert _number(compared["ours_orders_per_s_over_seed_at_1_client"])
    assert _number(compared["ours_orders_per_s_over_seed_at_16_clients"])
    assert _number(compared["machine_cpu_per_order_in_bare_requests"])
    assert _number(compared["single_order_p50_ours_over_seed_at_1_client"])

    busy = scenarios["busy_submission"]["runs"]
    assert [r["catalog_latency_ms"] for r in busy] == [0, 50]
    assert all(_number(r["p99_ms"]) for r in busy)

    memory = scenarios["memory"]
    assert memory["invariants"]["ok"], memory["invariants"]
    for who in ("api", "workers"):
        sizes = [v for k, v in memory[who].items() if k.endswith("_mb") and not k.startswith("growth")]
        assert sizes and all(_number(v) and v > 0 for v in sizes), memory[who]
        assert _number(memory[who]["growth_checkpoint_to_end_mb"]), memory[who]  # flat is 0.0
    assert len(memory["samples"]) >= 2

    sale = scenarios["flash_sale"]
    ours = sale["ours"]
    assert ours["invariants"]["ok"], ours["invariants"]
    assert (ours["placed"], ours["rejected_insufficient_stock"], ours["ledger"]["catalog_final"]) == (20, 60, 0)
    assert ours["ledger"]["ledger_writes_applied"] > 0
    assert all(_number(ours[k]) for k in ("decided_per_s", "last_decision_after_last_submission_s",
                                          "decided_over_accepted_per_s"))
    assert ours["cpu"]["machine_ms"] > 0 and ours["submission"]["accepted_per_s"] > 0
    assert sale["seed"]["clients"] == 16 and sale["seed"]["orders_claimed"] >= 20
    assert all(_number(sale["seed"][k]) for k in ("units_taken_from_catalog", "units_lost_to_get_put_races",
                                                  "units_oversold"))
    bulk = scenarios["bulk"]
    intake, placed = bulk["intake"], bulk["big_import"]
    for side in ("imports", "singles"):
        assert intake[side]["accepted_orders_per_s"] > 0 and _number(intake[side]["p99_ms"])
    assert _number(intake["imports_over_singles"]) and intake["jobs_in_database"] == intake["jobs_expected"]
    assert placed["import_status"] == 202 and placed["placed"] == 200 and placed["orders_per_s"] > 0
    assert placed["invariants"]["ok"], placed["invariants"]
    assert placed["cpu"]["machine_ms"] > 0
    for run_name in ("singles_idle", "singles_during_import"):
        assert placed[run_name]["completed"] == placed[run_name]["orders"] > 0
        assert all(_number(placed[run_name][k]) for k in ("p50_ms", "p99_ms"))

    assert report["ok"] is True and run.returncode == 0, run.stderr[-3000:]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("hold_snapshot", [False, True], ids=["plain", "held-snapshot"])
def test_the_soak_reports_every_window(tmp_path, hold_snapshot):
    """Two windows of 3 s at 20 orders/s, on the soak's own PostgreSQL (autovacuum on), with and without a
    snapshot held open for the whole run."""
    out = tmp_path / "soak.json"
    argv = [sys.executable, "-m", "bench.soak", "--rate", "20", "--windows", "2", "--window-seconds", "3",
            "--warmup-seconds", "1", "--concurrency", "4", "--out", str(out), "--log-dir", str(tmp_path / "logs"),
            *(["--hold-snapshot"] if hold_snapshot else [])]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ok"] is True and run.returncode == 0, (report.get("invariants"), run.stderr[-3000:])
    assert report["errors"] == 0 and report["statuses"] == {"202": 120}
    assert report["command"].split()[1:3] == ["-m", "bench.soak"]
    assert ("--hold-snapshot" in report["command"]) is hold_snapshot
    assert report["postgres"]["settings"]["autovacuum"] == "on"

    windows = report["windows"]
    assert [w["window"] for w in windows] == [1, 2]
    assert sum(w["submitted"] for w in windows) == 120
    for window in windows:
        assert all(_number(window["submission"][k]) for k in ("p50_ms", "p99_ms", "p999_ms"))
        assert all(_number(window["placing"][k]) for k in ("p50_ms", "p99_ms"))
        assert _number(window["cpu_ms_per_order"]) and window["cpu_ms_per_order"] > 0
        assert _number(window["backlog_at_end"])
        assert set(window["tables"]) == {"jobs", "job_events", "stock_writes", "inventory_moves", "orders",
                                         "order_items", "webhook_deliveries"}
        assert all(_number(t["mb"]) and _number(t["dead_rows"]) for t in window["tables"].values())
    assert sum(w["placed_of_created"] for w in windows) == 120
    assert windows[-1]["tables"]["orders"]["mb"] > 0
    assert all(_number(v) for v in report["last_over_first"].values())

    if hold_snapshot:
        held = report["held_snapshot"]
        assert held["held_seconds"] >= 6 and held["xmin_age_at_release"] > 0
        # Every submission since is a transaction the held snapshot's horizon stays behind.
        assert windows[-1]["oldest_xmin_age"] >= windows[0]["submitted"]
    else:
        assert report["held_snapshot"] is None

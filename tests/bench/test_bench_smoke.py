"""`python -m bench.run` end to end at tiny sizes: every scenario runs and reports numbers.

Speed is never asserted here (the machine is small and may be shared); only
that each scenario produced its numbers, that none of our requests failed and
that every invariant held.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("submission", "polling", "e2e", "seed", "scaling", "memory")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.timeout(420)
def test_every_scenario_reports_numbers_without_errors(tmp_path):
    out = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "bench.run",
            "--duration", "2", "--warmup", "0.3", "--poll-jobs", "30", "--orders", "60",
            "--scaling-orders", "60", "--scaling-workers", "1", "--scaling-latencies", "0,50",
            "--scaling-duration", "1.5", "--memory-orders", "150", "--settle-timeout", "120",
            "--out", str(out), "--log-dir", str(tmp_path / "logs")]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    scenarios = report["scenarios"]
    assert set(scenarios) == set(SCENARIOS), run.stderr[-3000:]
    failed = {name: s.get("exception", "")[-1500:] for name, s in scenarios.items() if "exception" in s}
    assert not failed, failed

    for name, scenario in scenarios.items():
        assert scenario["errors"] == 0, (name, scenario)
        assert scenario["command"].split()[1:3] == ["-m", "bench.run"], scenario["command"]
        assert f"--scenarios {'e2e,seed' if name == 'seed' else name}" in scenario["command"]

    submission = scenarios["submission"]
    for side in ("ours", "bare"):
        assert submission[side]["accepted_per_s"] > 0
        assert all(_number(submission[side][k]) for k in ("p50_ms", "p99_ms", "max_ms"))
    assert _number(submission["ours_fraction_of_bare"])
    assert submission["ours"]["jobs_in_database"] >= submission["ours"]["statuses"]["202"]

    polling = scenarios["polling"]
    assert polling["requests_per_s"] > 0 and _number(polling["p99_ms"]) and polling["job_ids"] == 30

    e2e = scenarios["e2e"]
    assert e2e["completed"] == 60 and e2e["orders_per_s"] > 0
    assert all(_number(e2e["completion"][k]) for k in ("p50_s", "p90_s", "p99_s", "max_s"))
    assert all(e2e["cpu_ms_per_order"][role] > 0 for role in ("workers", "postgres", "api", "peers"))
    assert e2e["invariants"]["ok"], e2e["invariants"]
    assert e2e["invariants"]["non_completed_jobs"] == 0
    assert e2e["invariants"]["products_mismatched"] == 0 and e2e["invariants"]["products_below_zero"] == 0

    seed = scenarios["seed"]
    assert seed["orders_per_s"] > 0 and _number(seed["p50_ms"]) and _number(seed["p99_ms"])
    assert seed["orders_in_database"] == 60
    assert _number(report["speed_up_vs_seed"]["orders_per_s"])

    scaling = scenarios["scaling"]
    assert [r["workers"] for r in scaling["end_to_end"]] == [1]
    assert all(r["orders_per_s"] > 0 and r["invariants"]["ok"] for r in scaling["end_to_end"])
    assert [r["catalog_latency_ms"] for r in scaling["submission_with_workers_running"]] == [0, 50]
    assert all(_number(r["p99_ms"]) for r in scaling["submission_with_workers_running"])

    memory = scenarios["memory"]
    assert memory["invariants"]["ok"], memory["invariants"]
    for who in ("api", "workers"):
        numbers = [v for k, v in memory[who].items() if k.endswith("_mb")]
        assert numbers and all(_number(v) and v > 0 for v in numbers), memory[who]
    assert len(memory["samples"]) >= 2

    assert report["ok"] is True and run.returncode == 0, run.stderr[-3000:]

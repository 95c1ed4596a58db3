"""The Postman collection (`postman/`), run with newman against a live stack.

The stack is the live tests' one, started here from `devstack.stack`:
a fresh PostgreSQL database, a Redis of its own, the reference peers with
their demo data, the API under gunicorn and a real `celery worker`.
Process logs land in `test-artifacts/logs/newman/`, newman's JSON report in
`test-artifacts/newman.json`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devstack.stack import Stack
from devstack.tokens import token

ROOT = Path(__file__).resolve().parents[2]
POSTMAN = ROOT / "postman"
COLLECTION = POSTMAN / "order-service.postman_collection.json"
ENVIRONMENT = POSTMAN / "local.postman_environment.json"
NEWMAN = POSTMAN / "node_modules" / ".bin" / "newman"
ARTIFACTS = ROOT / "test-artifacts"
LOGS = ARTIFACTS / "logs" / "newman"
REPORT = ARTIFACTS / "newman.json"

MIN_ASSERTIONS = 170



@pytest.fixture(scope="module")
def newman() -> Path:
    """postman/node_modules/.bin/newman, installed from package-lock.json with `npm ci` when missing."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed: newman needs Node.js (>= 18) on PATH", pytrace=False)
    if not NEWMAN.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"{NEWMAN.relative_to(ROOT)} is missing and npm is not on PATH to install it: install "
                        "Node.js with npm, or run `npm ci` in postman/", pytrace=False)
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=POSTMAN, capture_output=True,
                                text=True, timeout=240)
        if result.returncode != 0 or not NEWMAN.exists():
            pytest.fail(f"`npm ci` in postman/ failed ({result.returncode}):\n{result.stdout[-3000:]}"
                        f"\n{result.stderr[-3000:]}", pytrace=False)
    return NEWMAN


@pytest.fixture(scope="module")
def live_api(newman) -> str:
    """Base URL of an API with a worker, peers, Redis and a database of its own; all torn down after."""
    with Stack(LOGS) as stack:  # every part is stopped even when a later one fails to start
        stack.start(workers=1)
        yield stack.api_url


def test_postman_collection_passes_against_the_live_stack(newman, live_api):
    REPORT.unlink(missing_ok=True)
    argv = [str(newman), "run", str(COLLECTION), "-e", str(ENVIRONMENT), "--env-var", f"baseUrl={live_api}",
            "--env-var", f"token={token()}", "--env-var", f"customerToken={token('4242', admin=False)}",
            "--reporters", "cli,json", "--reporter-json-export", str(REPORT), "--color", "off"]
    result = subprocess.run(argv, cwd=POSTMAN, capture_output=True, text=True, timeout=120)
    (LOGS / "newman-cli.log").write_text(result.stdout + result.stderr)

    assert result.returncode == 0, f"newman exited {result.returncode}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    run = json.loads(REPORT.read_text())["run"]
    stats = run["stats"]
    failures = [f"{f['source'].get('name')}: {f['error'].get('test') or ''} {f['error'].get('message')}"
                for f in run["failures"]]
    assert failures == []
    assert {name: stats[name]["failed"] for name in ("requests", "testScripts", "prerequestScripts", "assertions")} \
        == {"requests": 0, "testScripts": 0, "prerequestScripts": 0, "assertions": 0}
    assert stats["assertions"]["total"] >= MIN_ASSERTIONS

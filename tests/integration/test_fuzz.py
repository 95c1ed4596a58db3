"""schemathesis fuzzes the live API from its own /openapi.json: no 5xx, every answer as documented."""
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.tokens import token

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def schemathesis(api_url, *args):
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{api_url}/openapi.json",
               "--checks", "all", "--exclude-checks", "ensure_resource_availability", "--max-examples", "25", "--request-timeout", "10", "--seed", "1", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("who", ["admin", "anonymous"])
def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(api, who):
    args = ["-H", f"Authorization: Bearer {token()}"] if who == "admin" else []
    result = schemathesis(api.url, *args)
    (ARTIFACTS / f"schemathesis-{who}.log").write_text(result.stdout + result.stderr)

    assert result.returncode == 0, result.stdout[-6000:]
    assert "500" not in {line.split()[-1] for line in result.stdout.splitlines() if line.strip()}

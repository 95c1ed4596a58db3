"""The static security scan (ruff's bandit rules, configured in ruff.toml) finds nothing."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_security_rules_are_clean():
    result = subprocess.run([str(Path(sys.executable).parent / "ruff"), "check", "--no-cache", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]

"""The alert rules file is one Prometheus loads: `promtool check rules` (Debian's `prometheus`
package; .ci/run installs it). That its metrics are the service's: tests/web/test_metrics.py."""
import shutil
import subprocess
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "observability" / "alerts.yml"


def test_promtool_accepts_the_alert_rules():
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install prometheus (it provides /usr/bin/promtool)"
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout

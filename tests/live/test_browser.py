"""A real browser (headless Chromium) opens /docs and Flower's dashboard, with nothing outside loopback reachable.

Screenshots are kept in test-artifacts/ for a person to look at.
"""
import shutil
import subprocess
from pathlib import Path

import pytest

from devstack import stack as procs

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AUTH = ("ops", "browser-test-secret")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")


def chromium(tmp_path, url, screenshot: Path) -> str:
    """Open `url` in headless Chromium with every host but loopback unresolvable; the page's DOM once
    its scripts ran, and a screenshot of it in `screenshot` (one browser start for both)."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=15000",
        "--window-size=1280,1800", "--dump-dom", f"--screenshot={screenshot}", url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120).stdout


@pytest.fixture(scope="module")
def flower_url(stack_env, worker):
    port = procs.free_port()
    proc = procs.start_flower(port, {**stack_env["env"], "FLOWER_BASIC_AUTH": ":".join(AUTH)},
                              stack_env["log_dir"])
    yield f"http://{AUTH[0]}:{AUTH[1]}@127.0.0.1:{port}"
    proc.stop()


def screenshot(stack_env, name: str) -> Path:
    """Where a screenshot of this broker's pass goes (the passes may run at once)."""
    return ARTIFACTS / f"{name}-{stack_env['broker'].kind}.png"


def test_swagger_ui_shows_every_operation(api, stack_env, tmp_path):
    dom = chromium(tmp_path, f"{api.url}/docs", screenshot(stack_env, "docs"))

    for path in ("/orders/{id}", "/jobs/{job_id}", "/orders",
                 "/customers/{customer_id}/orders", "/readyz"):
        assert f'data-path="{path}"' in dom, path
    assert screenshot(stack_env, "docs").stat().st_size > 10_000


def test_flower_dashboard_lists_the_worker(api, stack_env, flower_url, tmp_path):
    api.wait(api.submit(41, [{"product_id": 1, "quantity": 1}]).json()["job_id"])

    dom = chromium(tmp_path, f"{flower_url}/workers", screenshot(stack_env, "flower"))

    assert "worker1@" in dom
    assert screenshot(stack_env, "flower").stat().st_size > 10_000

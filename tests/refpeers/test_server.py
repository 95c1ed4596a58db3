"""The peers as they are served (`python -m refpeers`, as devstack, make run and docker-compose run it), over real HTTP."""
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from refpeers import demo_data

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(command: list, log) -> tuple:
    port = _free_port()
    command = [arg.replace("{port}", str(port)) for arg in command]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.name}")
        try:
            requests.get(f"{url}/admin/faults", timeout=1)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not come up")


SERVERS = {
    "python-m": [sys.executable, "-m", "refpeers", "--port", "{port}", "--seed", "demo"],
}


@pytest.fixture(scope="module", params=list(SERVERS))
def running(request, tmp_path_factory):
    log_path = tmp_path_factory.mktemp(request.param) / "server.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would block the server
        proc, url = _serve(SERVERS[request.param], log)
        yield request.param, url, log_path
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log_path.read_text()


@pytest.fixture()
def server(running):
    """The running server's URL, reset to demo data with no faults."""
    _, url, _ = running
    requests.post(f"{url}/admin/reset", json=demo_data(), timeout=5).raise_for_status()
    requests.put(f"{url}/admin/faults", json={"garbage_rate": 0, "error_rate": 0}, timeout=5).raise_for_status()
    return url


def test_concurrent_conditional_writes_over_http_lose_nothing(server):
    threads, per_thread = 8, 10

    def worker(_):
        with requests.Session() as http:
            conflicts = 0
            for _ in range(per_thread):
                while True:
                    read = http.get(f"{server}/products/1", timeout=5)
                    body = {**read.json(), "quantity": read.json()["quantity"] - 1}
                    put = http.put(f"{server}/products/1", json=body, headers={"If-Match": read.headers["ETag"]}, timeout=5)
                    if put.status_code == 200:
                        break
                    assert put.status_code == 412
                    conflicts += 1
            return conflicts

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))

    product = requests.get(f"{server}/admin/state", timeout=5).json()["products"]["1"]
    assert product["quantity"] == 1000 - threads * per_thread
    assert product["version"] == 1 + threads * per_thread
    assert requests.get(f"{server}/admin/stats", timeout=5).json()["writes"] == {"1": threads * per_thread}


def test_errors_over_http_are_json(server):
    for response in (requests.get(f"{server}/products/abc", timeout=5), requests.delete(f"{server}/carts/1", timeout=5)):
        assert response.headers["Content-Type"] == "application/json"
        assert "message" in response.json()
    requests.put(f"{server}/admin/faults", json={"garbage_rate": 1, "scope": "carts"}, timeout=5).raise_for_status()
    garbage = requests.get(f"{server}/carts/1", timeout=5)
    assert garbage.status_code == 200 and garbage.headers["Content-Type"].startswith("text/html")
    assert requests.get(f"{server}/products/1", timeout=5).json()["id"] == 1


def test_no_request_is_logged_by_default(running, server):
    name, url, log_path = running
    requests.get(f"{url}/products/1", timeout=5)
    assert "/products/1" not in log_path.read_text()

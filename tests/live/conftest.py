"""The real stack for integration tests: PostgreSQL, a broker of our own, the reference
peers, a `celery worker` process and the API under gunicorn, all as subprocesses.

The whole stack is started once per broker (Redis, then RabbitMQ; see
`broker_kind` in tests/conftest.py), so every test here runs against both.
Each test starts from empty tables and the peers' demo data with no faults.
"""
from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from devstack import stack as procs
from devstack.brokers import start_broker
from devstack.stack import Stack
from devstack.tokens import token
from models import Base
from tests.refpeers.served import PeersAdmin

ROOT = Path(__file__).resolve().parents[2]
# Each pytest-xdist worker (PYTEST_XDIST_WORKER: gw0, gw1, ...) logs into a folder of its own, so that stacks
# running at once never write to, or wait for a line in, the same file.
LOGS = ROOT / "test-artifacts" / "logs" / os.environ.get("PYTEST_XDIST_WORKER", "")


class Api:
    """A client of the live API."""

    def __init__(self, url: str, bearer: str | None = None):
        self.url = url
        self.http = requests.Session()
        if bearer:
            self.http.headers["Authorization"] = f"Bearer {bearer}"

    def as_(self, bearer: str | None) -> "Api":
        """The same API seen by another caller (None: no token at all)."""
        return Api(self.url, bearer)

    def get(self, path: str, **kwargs):
        return self.http.get(f"{self.url}{path}", timeout=10, **kwargs)

    def post(self, path: str, **kwargs):
        return self.http.post(f"{self.url}{path}", timeout=10, **kwargs)

    def submit(self, customer_id: int, items=None, key: str | None = None):
        headers = {"Idempotency-Key": key} if key else {}
        body = {"items": items} if items is not None else None
        return self.post(f"/orders/{customer_id}", json=body, headers=headers)

    def wait(self, job_id: str, until=("completed", "rejected", "failed"), timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/jobs/{job_id}").json()
            if job["status"] in until:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")


@pytest.fixture(scope="session")
def broker(broker_kind):
    """This session's own broker (a Redis, or a RabbitMQ vhost), removed at the end even after failures."""
    handle = start_broker(broker_kind, LOGS)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def stack_env(broker):
    stack = Stack(LOGS, broker=broker, settings={"WORKER_METRICS_PORT": str(procs.free_port())})
    try:
        stack.start_database()
        stack.start_peers()
    except BaseException:
        stack.stop()
        raise
    env = stack.env
    yield {"env": env, "broker": broker, "peers": stack.peers, "peers_url": stack.peers_url,
           "database_url": stack.database_url, "log_dir": LOGS,
           "worker_metrics_url": f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics", "stack": stack}
    stack.stop()


@pytest.fixture(scope="session")
def api_server(stack_env):
    proc = stack_env["stack"].start_api()
    yield stack_env["stack"].api_url, proc
    proc.stop()


@pytest.fixture(scope="session")
def worker(stack_env, api_server):
    proc = stack_env["stack"].start_worker()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def engine(stack_env, api_server):
    engine = create_engine(stack_env["database_url"])
    yield engine
    engine.dispose()


@pytest.fixture()
def publish(stack_env):
    """Send `times` wake-ups (duplicates, not coalesced) with the service's Celery configuration, from a
    process on the stack's environment: its broker, not the test's."""
    def send(times: int = 1, countdown: float = 0) -> None:
        code = ("import sys; from tasks import app; from tasks.dispatch import PLACE_ORDERS; "
                "[app.send_task(PLACE_ORDERS, countdown=float(sys.argv[2]) or None) for _ in range(int(sys.argv[1]))]")
        subprocess.run([sys.executable, "-c", code, str(times), str(countdown)], env=stack_env["env"],
                       cwd=ROOT, check=True, timeout=60)
    return send


@pytest.fixture()
def peers(stack_env):
    handle = PeersAdmin(stack_env["peers_url"])
    handle.reset()
    return handle


DEADLOCK = "40P01"


@pytest.fixture()
def empty_tables(engine):
    """Every table of the service emptied before the test. TRUNCATE locks the tables one by one, so a
    statement the worker is still running for the previous test can deadlock with it; PostgreSQL
    then cancels one of the two, and a cancelled TRUNCATE is tried again."""
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    for attempt in range(3):
        try:
            with engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {names}"))
            return
        except OperationalError as exc:
            if getattr(exc.orig, "pgcode", None) != DEADLOCK or attempt == 2:
                raise


@pytest.fixture()
def submitted_an_hour_ago(engine):
    """`submitted_an_hour_ago(job_id)` moves the job's submission an hour back, past its retry deadline
    (JOB_RETRY_DEADLINE_SECONDS, 5 s on the test stack): its next failed attempt fails it for good, as one
    would once the deadline passed. For tests of what follows a failure; waiting the deadline out is
    test_order_flow's."""
    def move(job_id: str) -> None:
        with engine.begin() as connection:
            connection.execute(text("UPDATE jobs SET created_at = created_at - interval '1 hour' WHERE id = :id"),
                               {"id": job_id})
    return move


@pytest.fixture()
def api(api_server, worker, empty_tables, peers):
    """A client of the live API, with a worker running, empty tables and fresh peers."""
    return Api(api_server[0], token())


class Receiver:
    """A webhook receiver on loopback: records every POST, answers `failures` 503s before it
    accepts, and takes `delay` seconds over each answer; over TLS with `tls` (a server context)."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.received: list[dict] = []
        self.failures = 0
        self.delay = 0.0
        self.answered: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                status = 503 if receiver.failures > 0 else 204
                receiver.failures -= 1 if status == 503 else 0
                receiver.received.append({"headers": dict(self.headers), "body": body, "path": self.path})
                receiver.answered.append(status)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}/hooks"
        # A short poll: `close` (server.shutdown) waits for it, half a second by default, after every test.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"received {len(self.received)} of {count}: {self.received}"
        return self.received

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    """A webhook receiver on loopback for one test."""
    handle = Receiver()
    yield handle
    handle.close()


@pytest.fixture()
def make_receiver():
    """Receivers made to measure (`make_receiver(tls=context)`), closed after the test."""
    made = []

    def make(**options) -> Receiver:
        made.append(Receiver(**options))
        return made[-1]

    yield make
    for handle in made:
        handle.close()

"""Restarts under load: PostgreSQL and the broker go down and come back while orders flow.

    python -m bench.restarts                                          # Redis restarted 20 times
    python -m bench.restarts --postgres-restarts 3 --redis-restarts 2   # PostgreSQL 3 times, then Redis twice
    python -m bench.restarts --own-postgres                           # on a PostgreSQL of its own, not DATABASE_URL's

It starts its own stack (a database, a Redis of its own restarted without
persistence, the reference peers, the API under gunicorn and two worker
processes; with --postgres-restarts or --own-postgres a PostgreSQL server of its own too), keeps
clients submitting orders, restarts PostgreSQL, then Redis, then waits for every
accepted order to end. Nothing restarts a worker or the API: a worker that exits
on its own is counted. Exit status 0 only when no worker exited, every accepted
order completed and every submission was answered 202, or 503 with Retry-After
saying the database is unavailable (while PostgreSQL is down, nothing can be
accepted). Orders accepted while Redis is down have no wake-up: the sweeper
dispatches them, so after PostgreSQL restarts they show that it carries on too.
"""
from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from bench.conclude import conclude
from devstack.brokers import RedisBroker
from devstack.postgres import PrivatePostgres
from devstack.stack import Stack
from devstack.tokens import token

ROOT = Path(__file__).resolve().parent.parent
FINAL = ("completed", "rejected", "failed", "cancelled")


class Run:
    """One run: the stack, the clients' answers and the workers that exited."""

    def __init__(self, args):
        self.args = args
        # Unique even for runs started in the same second (the test suite runs several at once).
        self.log_dir = ROOT / "test-artifacts" / "restarts" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.answers: Counter = Counter()  # (what was down when the answer came, the answer)
        self.down = "nothing"
        self.accepted: list[str] = []
        self.samples: list[str] = []
        self.exited: dict[str, str] = {}
        self.lock = threading.Lock()
        self.stack: Stack | None = None
        self.broker = self.postgres = None

    def start(self) -> None:
        # A Redis of the run's own, restarted without persistence; the stack leaves it to the run.
        self.broker = RedisBroker(self.log_dir)
        self.stack = Stack(self.log_dir, broker=self.broker, settings={"RATE_LIMIT": "100000 per second"})
        if self.args.postgres_restarts or self.args.own_postgres:
            self.postgres = PrivatePostgres(self.log_dir)
            self.stack.base_database_url = self.postgres.url
        self.stack.start(workers=self.args.workers, concurrency=self.args.concurrency)
        self.api_url, self.workers, self.database_url = self.stack.api_url, self.stack.workers, self.stack.database_url

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()

    # -- load ------------------------------------------------------------------------------
    def _client(self, number: int, stop: threading.Event) -> None:
        """Submit one-unit orders (the demo catalog has 1,000 of each of 100 products) until told to stop."""
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token()}"
        index = number
        while not stop.wait(self.args.pause):
            body = {"items": [{"product_id": 1 + index % 100, "quantity": 1}]}
            index += self.args.clients
            try:
                response = http.post(f"{self.api_url}/orders/{1 + index % 50}", json=body, timeout=10)
            except requests.RequestException as exc:
                self._answer("no answer", f"{exc.__class__.__name__}: {exc}")
                continue
            if response.status_code == 202:
                with self.lock:
                    self.accepted.append(response.json()["job_id"])
            self._answer(_kind(response), response.text[:300])

    def _answer(self, kind: str, sample: str) -> None:
        with self.lock:
            self.answers[self.down, kind] += 1
            if kind not in EXPECTED and len(self.samples) < 5:
                self.samples.append(f"{kind}: {sample}")

    def _note_exits(self) -> None:
        """Remember each worker that exited on its own, with the end of its log."""
        for worker in self.workers:
            if not worker.alive() and worker.name not in self.exited:
                self.exited[worker.name] = worker.log_text()[-2000:]

    def drive(self) -> None:
        """Clients submit throughout; PostgreSQL, then Redis, is restarted, `--interval` s apart."""
        outages = [("redis", self.broker.outage, self.args.down_seconds)] * self.args.redis_restarts
        if self.postgres is not None:
            postgres = ("postgres", self.postgres.outage, self.args.postgres_down_seconds)
            outages[:0] = [postgres] * self.args.postgres_restarts
        stop = threading.Event()
        clients = [threading.Thread(target=self._client, args=(n, stop), daemon=True) for n in range(self.args.clients)]
        for client in clients:
            client.start()
        try:
            for name, outage, seconds in outages:
                time.sleep(self.args.interval)
                self._note_exits()
                with outage():
                    self.down = name
                    time.sleep(seconds)
                self.down = "nothing"
            time.sleep(self.args.interval)
        finally:
            stop.set()
            for client in clients:
                client.join(30)
        self._note_exits()

    def settle(self, engine) -> dict[str, int]:
        """Wait until every accepted job has ended (or the settle timeout); their statuses."""
        deadline = time.monotonic() + self.args.settle_timeout
        while True:
            with engine.connect() as connection:
                statuses = dict(connection.execute(text("SELECT status, count(*) FROM jobs GROUP BY status")).all())
            self._note_exits()
            if not set(statuses) - set(FINAL) or time.monotonic() > deadline:
                return statuses
            time.sleep(0.5)


# A submission is accepted, or refused because the database is down (and says when to come back).
EXPECTED = ("202", "503 database unavailable, Retry-After")
VIOLATIONS = ("worker_exits", "accepted_not_completed", "unexpected_answers")


def _kind(response: requests.Response) -> str:
    if response.status_code == 503 and response.headers.get("Retry-After") and \
            "database is unavailable" in response.json().get("message", ""):
        return EXPECTED[1]
    return str(response.status_code)


def run(args) -> dict:
    """Start, drive, settle, report; always stop."""
    restarts = Run(args)
    try:
        restarts.start()
        started = time.monotonic()
        restarts.drive()
        engine = create_engine(restarts.database_url)
        statuses = restarts.settle(engine)
        with engine.connect() as connection:
            completed = set(connection.execute(text("SELECT id::text FROM jobs WHERE status = 'completed'")).scalars())
        engine.dispose()
        seconds = time.monotonic() - started
    finally:
        restarts.stop()
    answers: dict[str, dict[str, int]] = {}
    for (down, kind), count in sorted(restarts.answers.items()):
        answers.setdefault(f"while {down} was down", {})[kind] = count
    report = {
        "postgres_restarts": args.postgres_restarts,
        "redis_restarts": args.redis_restarts,
        "answers": answers,
        "accepted": len(restarts.accepted),
        "unexpected_answers": sum(count for (_, kind), count in restarts.answers.items() if kind not in EXPECTED),
        "answer_samples": restarts.samples,
        "jobs_by_status": statuses,
        "accepted_not_completed": len(set(restarts.accepted) - completed),
        "worker_exits": len(restarts.exited),
        "exited_worker_logs": restarts.exited,
        "seconds": round(seconds, 1),
        "logs": str(restarts.log_dir),
    }
    report["violations"] = {name: report[name] for name in VIOLATIONS if report[name]}
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--postgres-restarts", type=int, default=0, help="restarts of a PostgreSQL of its own")
    p.add_argument("--postgres-down-seconds", type=float, default=8.0)
    p.add_argument("--own-postgres", action="store_true",
                   help="a PostgreSQL server of the run's own even without restarting it, instead of DATABASE_URL's")
    p.add_argument("--redis-restarts", type=int, default=20)
    p.add_argument("--down-seconds", type=float, default=1.0, help="how long each restart keeps Redis down")
    p.add_argument("--interval", type=float, default=2.0, help="seconds of flowing orders between restarts")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--pause", type=float, default=0.05, help="seconds each client waits between submissions")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    p.add_argument("--settle-timeout", type=float, default=120.0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "restarts.json")
    return p


def main() -> None:
    args = parser().parse_args()
    conclude(run(args), args.out, hidden=("exited_worker_logs",))


if __name__ == "__main__":
    main()

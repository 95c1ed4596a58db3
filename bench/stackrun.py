"""One benchmark stack: a fresh database, its own Redis, the reference peers, the API and workers.

Every scenario of `bench.run` starts one of these (or several), drives it and
stops it, so no scenario sees another's data, queue or warm caches. Processes
come from `devstack.stack`, exactly as the tests and the chaos run start them.
"""
from __future__ import annotations

import os
import random
import secrets
import sys
import time
from functools import lru_cache
from pathlib import Path

import psutil
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from devstack import stack as procs

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = range(1, 101)
STOCK = 10**7
UNFINISHED = ("queued", "processing", "retrying")


def order_items(index: int, seed: int) -> list[dict]:
    """The two lines of order `index` (0-based): two different products of the 100, 1–3 units each."""
    rng = random.Random(seed * 1_000_003 + index)
    first, second = rng.sample(PRODUCTS, 2)
    return [{"product_id": first, "quantity": rng.randint(1, 3)},
            {"product_id": second, "quantity": rng.randint(1, 3)}]


# The API checks bearer JWTs (HS256 with JWT_SECRET) and rate-limits per customer: the bench
# runs it that way, as deployed, and every simulated customer sends its own token. The secret
# is made per bench run; servers that do not check tokens ignore the header.
JWT_SECRET = secrets.token_urlsafe(48)


@lru_cache(maxsize=None)
def auth_headers(customer_id: int) -> dict:
    """The Authorization header of customer `customer_id` (none when PyJWT is not installed)."""
    try:
        import jwt
    except ImportError:
        return {}
    token = jwt.encode({"sub": str(customer_id), "exp": int(time.time()) + 7 * 86400}, JWT_SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def customer_of(index: int) -> int:
    """Order `index` belongs to customer index+1, whose cart holds the same two lines."""
    return index + 1


def tree_rss(proc: procs.Proc | None) -> int:
    """Resident memory of a process and all its descendants, in bytes (0 when gone)."""
    if proc is None or not proc.alive():
        return 0
    try:
        root = psutil.Process(proc.popen.pid)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class Stack(procs.Stack):
    """A `devstack.stack.Stack` with production clocks and the bench's sizes; `with` starts and stops it.
    Adds the bench's view: the peers' admin calls, the database, other WSGI apps beside the API."""

    def __init__(self, args, name: str, *, workers: int, carts: int, log_root: Path):
        super().__init__(log_root / name, fast_clocks=False, settings={
            "REFPEERS_SEED": "empty",
            "ACCESS_LOG": "true" if args.access_log else "false",
            "WEB_WORKERS": str(args.web_workers), "WEB_THREADS": str(args.web_threads),
            "WORKER_CONCURRENCY": str(args.concurrency),
            "JWT_SECRET": JWT_SECRET,
        })
        self.args, self.name, self.n_workers, self.n_carts = args, name, workers, carts
        self.engine = None

    # -- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> "Stack":
        started = time.monotonic()
        try:
            granian = self.args.server == "granian"
            self.start(api=not granian, workers=self.n_workers, concurrency=self.args.concurrency,
                       web_workers=self.args.web_workers, web_threads=self.args.web_threads)
            if granian:
                self.start_granian_api()
            self.reset_peers()
            self.engine = create_engine(self.database_url, pool_size=2, max_overflow=2)
        except BaseException:
            self.__exit__()
            raise
        self.startup_seconds = round(time.monotonic() - started, 1)
        return self

    def __exit__(self, *exc) -> None:
        """Tear down: SIGKILL to each process group (nothing here needs a graceful exit, and a
        graceful one costs seconds per process), then drop the database."""
        if self.engine is not None:
            self.engine.dispose()
        self.stop(graceful=False)

    # -- parts ----------------------------------------------------------------------------------
    def reset_peers(self, body: dict | None = None) -> None:
        """The peers' data: `body` (an /admin/reset body), by default 100 products of ample stock and
        carts for customers 1..n_carts holding their orders' lines."""
        body = body or {
            "products": [{"id": p, "name": f"Product {p}", "price": 2.5, "quantity": STOCK} for p in PRODUCTS],
            "carts": [{"customer_id": customer_of(i), "status": "Open", "items": order_items(i, self.args.seed)}
                      for i in range(self.n_carts)],
        }
        requests.post(f"{self.peers_url}/admin/reset", json=body, timeout=60).raise_for_status()

    def set_latency(self, latency_ms: float) -> None:
        requests.put(f"{self.peers_url}/admin/faults", json={"latency_ms": latency_ms}, timeout=10).raise_for_status()

    def peers_state(self) -> dict:
        return requests.get(f"{self.peers_url}/admin/state", timeout=60).json()

    def peers_stats(self) -> dict:
        return requests.get(f"{self.peers_url}/admin/stats", timeout=60).json()

    def start_granian_api(self) -> None:
        """The API under granian instead of gunicorn (`--server granian`, a trial): its WSGI interface,
        the same processes and threads per process, the app built by each process (granian spawns
        them: nothing is built before), Prometheus' multiprocess directory made here (gunicorn.conf.py
        makes gunicorn's)."""
        metrics = self.log_dir / "prometheus"
        metrics.mkdir(parents=True, exist_ok=True)
        argv = [str(procs.BIN / "granian"), "--interface", "wsgi", "--workers", str(self.args.web_workers),
                "--blocking-threads", str(self.args.web_threads), "--host", "127.0.0.1", "--port",
                str(self.api_port), "--access-log" if self.args.access_log else "--no-access-log",
                "--factory", "web:create_app"]
        self.api = procs.Proc("api", argv, {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}, self.log_dir)
        self.api.wait_for_http(f"{self.api_url}/healthz")

    def stop_api(self) -> None:
        if self.api is not None:
            self.api.kill()

    def start_app(self, name: str, app: str, env_extra: dict | None = None) -> tuple[procs.Proc, int, list[str]]:
        """Another WSGI app under the API's gunicorn flags; (process, port, argv)."""
        port = procs.free_port()
        argv = procs.gunicorn_argv(app, port, self.args.web_workers, self.args.web_threads)
        proc = self.add(procs.Proc(name, argv, {**self.env, **(env_extra or {})}, self.log_dir))
        proc.wait_for_http(f"http://127.0.0.1:{port}/healthz")
        return proc, port, argv

    def libpq_dsn(self) -> str:
        """The database as a libpq URL (for psycopg2 without SQLAlchemy)."""
        return make_url(self.database_url).set(drivername="postgresql").render_as_string(hide_password=False)

    # -- database -------------------------------------------------------------------------------
    def scalar(self, sql: str, **params):
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).all()

    def completion_times(self, since: float = 0.0) -> list[tuple[float, float]]:
        """(created, completed) epoch seconds of each completed job created since `since`. Completed is
        when the job's timeline first shows it completed (what a client polling it sees), not its last
        update: a cart order's job is updated again when its cart is closed, after it completed."""
        return [(float(created), float(done)) for created, done in self.rows(
            "SELECT extract(epoch FROM j.created_at), extract(epoch FROM coalesce(min(e.at), j.updated_at))"
            " FROM jobs j LEFT JOIN job_events e ON e.job_id = j.id AND e.status = 'completed'"
            " WHERE j.status = 'completed' AND j.created_at >= to_timestamp(:since)"
            " GROUP BY j.id ORDER BY j.created_at", since=since)]

    def wait_until_settled(self, expected_jobs: int, timeout: float, progress=None) -> dict:
        """Wait until `expected_jobs` jobs exist, none is unfinished and no cart is still to be closed
        (so that a run's CPU includes closing the carts); gives up after `timeout` seconds or 120 s
        without any job finishing."""
        started = time.monotonic()
        last_change, last_unfinished = started, None
        while True:
            total, unfinished = self.rows(
                "SELECT count(*), count(*) FILTER (WHERE status IN ('queued','processing','retrying')"
                " OR cart_status = 'pending') FROM jobs")[0]
            if progress is not None:
                progress(total - unfinished)
            now = time.monotonic()
            if total >= expected_jobs and unfinished == 0:
                return {"settled": True, "seconds": round(now - started, 2)}
            if unfinished != last_unfinished:
                last_change, last_unfinished = now, unfinished
            if now - started > timeout or now - last_change > 120:
                return {"settled": False, "seconds": round(now - started, 2), "unfinished": unfinished,
                        "jobs": total}
            time.sleep(0.2)


def python_command() -> str:
    """How to call this interpreter in a reproducible command line."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(ROOT)) if exe.is_relative_to(ROOT) else str(exe)
    except ValueError:
        return str(exe)


class CpuMeter:
    """How busy the whole machine was during a measurement, and which part of the stack used it.

    `machine_busy_seconds` is the busy time of every core from /proc/stat (all but idle and
    iowait) over the window. `cpu_seconds_by_role` splits what the stack used among its
    processes (workers, api, peers, redis, postgres: the backends of the stack's database; bench:
    this process, the load generator). This machine may be shared (other test runs, other
    benchmarks): `others_cores` is the machine's busy time minus all of those, averaged over the
    window, in cores (PostgreSQL's own background processes and the kernel's work land there too).
    """

    def __init__(self, stack: Stack):
        self.stack = stack

    @staticmethod
    def _role(name: str) -> str:
        """What a stack process is, for the CPU split: api, workers, peers, redis, or its own name."""
        if name.startswith("worker"):
            return "workers"
        return "redis" if name.startswith("redis") else name

    def _ours(self) -> dict[int, tuple[str, float]]:
        roles = {os.getpid(): "bench"}
        for proc in self.stack.processes():
            if proc.alive():
                try:
                    root = psutil.Process(proc.popen.pid)
                    for pid in [root.pid, *(child.pid for child in root.children(recursive=True))]:
                        roles[pid] = self._role(proc.name)
                except psutil.NoSuchProcess:
                    pass
        database = make_url(self.stack.database_url).database
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if cmdline.startswith("postgres:") and f" {database} " in f"{cmdline} ":
                roles[process.pid] = "postgres"
        times = {}
        for pid, role in roles.items():
            try:
                cpu = psutil.Process(pid).cpu_times()
                times[pid] = (role, cpu.user + cpu.system)
            except psutil.NoSuchProcess:
                pass
        return times

    @staticmethod
    def _busy() -> float:
        cpu = psutil.cpu_times()
        return cpu.user + cpu.nice + cpu.system + getattr(cpu, "irq", 0) + getattr(cpu, "softirq", 0) \
            + getattr(cpu, "steal", 0)

    def __enter__(self) -> "CpuMeter":
        self.started = time.monotonic()
        self.busy0 = self._busy()
        self.ours0 = self._ours()
        self.load0 = os.getloadavg()[0]
        return self

    def __exit__(self, *exc) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        ours1 = self._ours()
        by_role: dict[str, float] = {}
        for pid, (role, seconds) in ours1.items():
            by_role[role] = by_role.get(role, 0.0) + seconds - self.ours0.get(pid, (role, 0.0))[1]
        ours = sum(by_role.values())
        busy = self._busy() - self.busy0
        self.result = {
            "seconds": round(elapsed, 2),
            "machine_busy_seconds": round(busy, 3),
            "cpu_seconds_by_role": {role: round(seconds, 3) for role, seconds in sorted(by_role.items())},
            "machine_busy_cores": round(busy / elapsed, 2),
            "ours_cores": round(ours / elapsed, 2),
            "others_cores": round(max(0.0, busy - ours) / elapsed, 2),
            "load_avg_1m_before": round(self.load0, 2),
            "cpus": psutil.cpu_count(),
        }

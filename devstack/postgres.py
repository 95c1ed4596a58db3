"""A PostgreSQL server of a test's own, which it may stop and start again, and the binaries it and
`make run`'s embedded PostgreSQL (devstack/services.py) run.

The shared server must never be restarted (other stacks use it), so a test or
bench that restarts PostgreSQL gets this: a fresh cluster in a temporary
directory, on a free port, without fsync (nothing here must survive a power
cut). When run as root, the server runs as the `postgres` user, which must be
able to reach the binaries: the system's PostgreSQL is preferred, and the copy
the `pgserver` package ships (inside the checkout's .venv, which a clone in a
private directory hides from that user) is used from a copy outside the
checkout when it has to be.
"""
from __future__ import annotations

import glob
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


def system_binaries() -> Path | None:
    """The system's PostgreSQL server binaries (`pg_config --bindir`, else the newest
    /usr/lib/postgresql/*/bin), if it has any."""
    candidates = []
    if shutil.which("pg_config"):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.append(Path(bindir))
    candidates += sorted((Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")),
                         key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0, reverse=True)
    return next((path for path in candidates if (path / "initdb").is_file() and (path / "postgres").is_file()), None)


def pgserver_packages() -> Path:
    """The folder (site-packages) holding the `pgserver` package (a development requirement) and the
    libraries its binaries load (`pgserver.libs`, found relative to the binaries)."""
    # Found, not imported: importing pgserver sets up its own server registry (and warns without XDG_RUNTIME_DIR).
    return Path(importlib.util.find_spec("pgserver").origin).parent.parent


def pgserver_binaries(user: str | None, packages: Path | None = None) -> Path:
    """pgserver's binaries (in `packages`, default: where it is installed) from where `user` can run
    them: a checkout in a private directory (mode 700, as `mktemp -d` makes and as root's home is)
    hides its .venv from any other user, so they are then run from a copy in the temporary directory."""
    packages = packages or pgserver_packages()
    bindir = packages / "pgserver" / "pginstall" / "bin"
    try:
        subprocess.run([str(bindir / "initdb"), "--version"], check=True, capture_output=True, user=user)
        return bindir
    except PermissionError:
        pass
    copy = Path(tempfile.gettempdir()) / f"orders-pgserver-{version(bindir)}"
    if not copy.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=f"{copy.name}-", dir=copy.parent))
        for part in ("pgserver/pginstall", "pgserver.libs"):
            shutil.copytree(packages / part, staging / part, symlinks=True)
        staging.chmod(0o755)
        try:
            staging.rename(copy)
        except OSError:  # another process made it first
            shutil.rmtree(staging, ignore_errors=True)
    return copy / "pgserver" / "pginstall" / "bin"


def version(bindir: Path) -> str:
    """The version of the PostgreSQL in `bindir`, e.g. 16.2."""
    # "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    return subprocess.run([str(bindir / "postgres"), "--version"], check=True, capture_output=True,
                          text=True).stdout.split()[2]


def binaries(user: str | None = None) -> Path:
    """The directory of `initdb` and `postgres` to run as `user`: the system's PostgreSQL when it has
    one, else pgserver's."""
    return system_binaries() or pgserver_binaries(user)


def server_user() -> str | None:
    """Who runs the server: this user, or `postgres` for root (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root needs a 'postgres' user to run a private PostgreSQL as") from None
    return "postgres"


def create_cluster(data: Path, bindir: Path, user: str | None) -> None:
    """A new cluster in `data` (which `user`, if given, must be able to create), trust auth for `postgres`."""
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync",
                    "-E", "UTF8"], check=True, capture_output=True, user=user)


class PrivatePostgres:
    """A PostgreSQL of one's own: `url` (its `postgres` database, trust auth), `outage()`, `stop()`.
    `settings` (name -> value) override the server's defaults here (no fsync, asynchronous commit)."""

    def __init__(self, log_dir: Path, bindir: Path | None = None, settings: dict[str, str] | None = None):
        self.user = server_user()
        bindir = bindir or binaries(self.user)
        self.dir = Path(tempfile.mkdtemp(prefix="orders-pg-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        data = self.dir / "data"
        create_cluster(data, bindir, self.user)
        port = procs.free_port()
        self.server = procs.Proc(f"postgres-{port}", [
            str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(self.dir),
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

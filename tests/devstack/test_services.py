"""`make run`'s embedded PostgreSQL starts from a checkout in a private directory (mode 700), and a
second call finds it running."""
import shutil
import subprocess

import pytest
from sqlalchemy import create_engine, text

from devstack import postgres, services
from devstack import stack as procs


@pytest.fixture()
def private_checkout(tmp_path, monkeypatch):
    """The embedded servers' data folder inside a private checkout, and a free port for PostgreSQL."""
    checkout = tmp_path / "clone"
    checkout.mkdir(mode=0o700)
    monkeypatch.setattr(services, "DATA", checkout / ".data")
    monkeypatch.setattr(services, "EMBEDDED_POSTGRES_PORT", procs.free_port())
    user = postgres.server_user()
    bindir = postgres.binaries(user)
    yield checkout
    data = services.embedded_postgres_data(bindir, user)
    subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True,
                   user=user)
    shutil.rmtree(data.parent, ignore_errors=True)


def test_the_embedded_postgresql_starts_from_a_private_checkout(private_checkout):
    url = services.embedded_postgres()

    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
    assert services.embedded_postgres() == url  # running: found, not started again

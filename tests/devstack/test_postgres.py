"""The private PostgreSQL of the tests (and `make run`'s embedded one) starts from a checkout in a
private directory (mode 700, as `mktemp -d` makes and as root's home is), where the server's user
(`postgres`, when run as root) cannot reach the binaries inside the checkout's .venv."""
import shutil

import pytest
from sqlalchemy import create_engine, text

from devstack import postgres
from devstack.postgres import PrivatePostgres


@pytest.fixture()
def private_checkout(tmp_path):
    """A private directory whose .venv holds pgserver's PostgreSQL, as a clone's does."""
    checkout = tmp_path / "clone"
    checkout.mkdir(mode=0o700)
    packages = checkout / ".venv" / "lib" / "site-packages"
    for part in ("pgserver/pginstall", "pgserver.libs"):
        shutil.copytree(postgres.pgserver_packages() / part, packages / part, symlinks=True)
    return checkout, packages


def test_a_private_postgresql_starts_from_pgserver_in_a_private_checkout(private_checkout, tmp_path):
    checkout, packages = private_checkout
    user = postgres.server_user()
    bindir = postgres.pgserver_binaries(user, packages)
    if user is not None:  # run as root: the server's user cannot reach into the checkout, so a copy is run
        assert not bindir.is_relative_to(checkout)
    server = PrivatePostgres(tmp_path / "logs", bindir)
    try:
        engine = create_engine(server.url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
        engine.dispose()
    finally:
        server.stop()


def test_the_system_postgresql_is_preferred_to_pgserver_s():
    system = postgres.system_binaries()
    if system is None:
        pytest.skip("no system PostgreSQL here")
    assert postgres.binaries(postgres.server_user()) == system

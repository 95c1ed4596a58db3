"""Fixtures shared by every test layer."""
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete

import migrations
from devstack import stack as procs
from devstack.brokers import BROKERS
from devstack.services import DEFAULT_DATABASE_URL
from models import Base
from models.db import Database
from tests import parallel
from tests.parallel import pytest_make_parametrize_id  # noqa: F401 - a hook

TESTS = Path(__file__).parent
# The folders whose tests need the live stack (subprocesses: gunicorn, a celery worker, the peers, a broker).
LIVE = ("live", "chaos", "postman", "bench")


def pytest_addoption(parser):
    parser.addoption("--broker", action="append", choices=BROKERS,
                     help="run the live-stack tests against this broker only (repeatable; default: each of "
                          f"{', '.join(BROKERS)})")


# First: pytest-xdist reads the `xdist_group` marks tests/parallel.py adds in its own hook.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark every test of a live-stack folder `live` (`pytest -m "not live"` runs the rest, the inner
    loop), then share the tests out among the test processes (tests/parallel.py)."""
    for item in items:
        if item.path.is_relative_to(TESTS) and item.path.relative_to(TESTS).parts[0] in LIVE:
            item.add_marker(pytest.mark.live)
    parallel.pytest_collection_modifyitems(config, items)


def pytest_generate_tests(metafunc):
    """Tests on a live stack run once per broker.

    `broker_kind` (the shared stack of tests/live) has session scope: pytest
    runs all tests of one broker, then tears that stack down before starting the
    next. `own_broker_kind` (a test that starts a stack of its own, the chaos run)
    has function scope, so such tests run first, before any shared stack holds
    PostgreSQL connections.
    """
    kinds = metafunc.config.getoption("broker") or BROKERS
    if "broker_kind" in metafunc.fixturenames:
        metafunc.parametrize("broker_kind", kinds, scope="session")
    if "own_broker_kind" in metafunc.fixturenames:
        metafunc.parametrize("own_broker_kind", kinds)


@pytest.fixture(scope="module")
def database_url():
    """A fresh, empty database of the module's own on the test PostgreSQL, dropped after it."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    url = procs.create_database(base)
    yield url
    procs.drop_database(base, url)


def _empty_every_table():
    """A DELETE of every table, all in one statement (foreign keys are checked at its end, so their
    cycles do not matter): a few milliseconds, where TRUNCATE takes a tenth of a second."""
    *first, last = Base.metadata.sorted_tables
    return delete(last).add_cte(*[delete(table).cte(f"emptied_{table.name}") for table in first])


EMPTY_EVERY_TABLE = _empty_every_table()


@pytest.fixture(scope="module")
def migrated(database_url):
    """The module's database, migrated as the app migrates it when it starts."""
    engine = create_engine(database_url)
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def engine(migrated):
    """The module's database, migrated, every table emptied before the test."""
    with migrated.begin() as connection:
        connection.execute(EMPTY_EVERY_TABLE)
    return migrated


@pytest.fixture()
def connection(engine, database_url):
    """A connection as one task execution holds it (`models.db.Database`: AUTOCOMMIT, its advisory
    locks released when it is given back) on the module's database, every table emptied before."""
    database = Database(database_url, pool_size=1)
    with database.connection() as connection:
        yield connection
    database.dispose()

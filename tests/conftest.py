"""Fixtures shared by every test layer."""
import base64
import json
import os
import re

import pytest

from devstack import stack as procs
from devstack.brokers import BROKERS
from devstack.services import DEFAULT_DATABASE_URL

# Unit tests build Settings from explicit dicts; these only satisfy imports that read the environment.
os.environ.setdefault("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")


def pytest_addoption(parser):
    parser.addoption("--broker", action="append", choices=BROKERS,
                     help="run the live-stack tests against this broker only (repeatable; default: each of "
                          f"{', '.join(BROKERS)})")


def pytest_generate_tests(metafunc):
    """Tests on a live stack run once per broker.

    `broker_kind` (the shared stack of tests/integration) has session scope: pytest
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


_JWT = re.compile(r"eyJ[\w-]*\.eyJ[\w-]*\.[\w-]*")


def _token_name(match: re.Match) -> str:
    """A token by what it is (its algorithm and claim names), not its bytes."""
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
                          for part in match.group().split(".")[:2])
    except ValueError:
        return "jwt"
    return f"jwt-{header.get('alg')}-{'-'.join(sorted(claims))}"


def pytest_make_parametrize_id(config, val, argname):
    """Every pytest-xdist worker process must collect the same test ids, and a token minted at import
    time carries its time (its expiry): a parameter holding a token is named after what the token is."""
    if isinstance(val, str) and _JWT.search(val):
        return _JWT.sub(_token_name, val)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist's `--dist loadgroup` (pytest.ini), the tests on one broker's shared stack form
    one group, which one worker process runs: each broker's stack starts once, as without xdist.
    Every other test is a unit of its own, handed to whichever worker is free (the largest groups
    go first, then the rest in collection order: the chaos, restart and bench runs come early)."""
    if not getattr(config.option, "loadgroup", False):  # what xdist sets in its worker processes
        return
    for item in items:
        params = getattr(item, "callspec", None) and item.callspec.params
        if params and "broker_kind" in params:
            group = f"stack-{params['broker_kind']}"
            item.add_marker(pytest.mark.xdist_group(group))
            _name_group_in_id(item, group)


def _name_group_in_id(item, group: str) -> None:
    """pytest-xdist 3.8 tells its scheduler a test's group by suffixing the test's id with `@group` in the
    attribute pytest 8 kept the id in; pytest 9 keeps it in another, so the groups were silently ignored
    (pytest-xdist issue 1386, unfixed in a release so far). Suffix it where pytest 9 reads it."""
    node_id = getattr(item, "_id", None)
    if node_id is not None and not str(node_id).endswith(f"@{group}"):
        item._id = type(node_id).parse(f"{node_id}@{group}")


@pytest.fixture(scope="module")
def database_url():
    """A fresh, empty database of the module's own on the test PostgreSQL, dropped after it."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    url = procs.create_database(base)
    yield url
    procs.drop_database(base, url)

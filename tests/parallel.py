"""How the suite runs in several processes at once (`make test`: pytest-xdist, `--dist loadgroup
--no-loadscope-reorder`); the hooks are tests/conftest.py's.

Most tests wait on processes, brokers and timers rather than use the CPU, so four processes share
two cores well. pytest-xdist hands out units of tests, each to one process, in the order of their
first test; the order here puts the longest first and the many short ones last, to fill in:

1. the tests on one broker's shared stack (tests/conftest.py, `broker_kind`): one unit per broker,
   so that each stack starts once, as in a single process; but a module of SEPARATE_STACK_MODULES
   is a unit of its own, whose process starts a stack of that broker for it: it is long and busy
   enough to be better off beside the rest than after it;
2. the tests that start a stack of their own (the chaos, restart, cluster and bench runs, and those
   parametrized by `own_broker_kind`): a unit each, so that they spread over the processes, the
   longest first (OWN_STACK_SECONDS);
3. every other test: a unit per module, whose module fixtures are then set up once.

pytest-xdist does not wait for a process to be free: it gives a process its next unit as soon as
two or fewer of its tests are left to run, so the unit after a two-test one is bound to that process
from the start. With the long own-stack units last in pytest's order, two or three of them ended up
queued behind one process while the others ran out of work: the suite's last 30-70 s ran on one
process, half the machine idle.
"""
from __future__ import annotations

import base64
import json
import re

import pytest

OWN_STACK_FOLDERS = ("chaos", "bench")
# schemathesis: three runs (two on Redis) of 20-50 s each; inside its broker's unit, a model of the
# hand-out with a full run's test lengths ends the suite about 30 s later.
SEPARATE_STACK_MODULES = ("test_fuzz.py",)
# How long each long own-stack test took in a full run (`make test` on 2 cores, seconds), to hand
# them out longest first; one missing from here goes after them. The order matters, not the numbers.
OWN_STACK_SECONDS = {
    "test_every_scenario_reports_numbers_without_errors": 67,
    "test_twenty_redis_restarts_while_orders_flow": 53,
    "test_a_cluster_that_loses_a_node_loses_nothing": 46,
    "test_nothing_is_lost_doubled_or_oversold_under_chaos[rabbitmq-4]": 35,
    "test_nothing_is_lost_doubled_or_oversold_under_chaos[rabbitmq-2]": 34,
    "test_nothing_is_lost_doubled_or_oversold_under_chaos[redis-4]": 23,
    "test_postgres_restarts_refuse_with_503_and_lose_nothing": 21,
    "test_nothing_is_lost_doubled_or_oversold_under_chaos[redis-2]": 19,
}

_JWT = re.compile(r"eyJ[\w-]*\.eyJ[\w-]*\.[\w-]*")


def pytest_make_parametrize_id(config, val, argname):
    """Every process must collect the same test ids, and a token minted at import time carries its
    time (its expiry): a parameter holding a token is named after what the token is."""
    if isinstance(val, str) and _JWT.search(val):
        return _JWT.sub(_token_name, val)
    return None


def _token_name(match: re.Match) -> str:
    """A token by its algorithm and claim names, not its bytes."""
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
                          for part in match.group().split(".")[:2])
    except ValueError:
        return "jwt"
    return f"jwt-{header.get('alg')}-{'-'.join(sorted(claims))}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Group the tests into units and put the units in the order to hand them out (see the module)."""
    if not getattr(config.option, "loadgroup", False):  # what xdist sets in its worker processes
        return
    units = {id(item): _unit(item) for item in items}
    for item in items:
        group = units[id(item)][1]
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            _name_group_in_id(item, group)
    items.sort(key=lambda item: units[id(item)][0])  # stable: each rank keeps pytest's order


def _unit(item) -> tuple[tuple[int, int], str | None]:
    """The item's rank and group (None: a unit of its own)."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    if "broker_kind" in params:
        separate = f"-{item.path.stem}" if item.path.name in SEPARATE_STACK_MODULES else ""
        return (0, 0), f"stack-{params['broker_kind']}{separate}"
    if "own_broker_kind" in params or item.path.parent.name in OWN_STACK_FOLDERS:
        return (1, -OWN_STACK_SECONDS.get(item.name, 0)), None
    return (2, 0), item.nodeid.partition("::")[0]


def _name_group_in_id(item, group: str) -> None:
    """pytest-xdist 3.8 tells its scheduler a test's group by suffixing the test's id with `@group` in the
    attribute pytest 8 kept the id in; pytest 9 keeps it in another, so groups were silently ignored
    (pytest-xdist issue 1386, unfixed in a release so far). Suffix it where pytest 9 reads it."""
    node_id = getattr(item, "_id", None)
    if node_id is not None and not str(node_id).endswith(f"@{group}"):
        item._id = type(node_id).parse(f"{node_id}@{group}")

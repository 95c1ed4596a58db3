"""How the suite runs in several processes at once (`make test`: pytest-xdist, `--dist loadgroup
--no-loadscope-reorder`); the hooks are tests/conftest.py's.

Most tests wait on processes, brokers and timers rather than use the CPU, so four processes share
two cores well. pytest-xdist hands out units of tests (the tests of one `xdist_group` mark), each to
one process, in the order of their first test. The units, in that order:

1. the tests on one broker's shared stack (tests/conftest.py, `broker_kind`): one unit per broker, so
   that each stack starts once, as in a single process; but a module of SEPARATE_STACK_MODULES is a
   unit of its own, whose process starts a stack of that broker for it: it is long and busy enough
   to be better off beside the rest than after it;
2. the tests that start a stack of their own (the chaos, restart, cluster and bench runs, and those
   parametrized by `own_broker_kind`): a unit each, so that they spread over the processes;
3. every other test: a unit per module, whose module fixtures are then set up once.

pytest-xdist gives a process its next unit as soon as two or fewer of its tests are left to run, so
the long units go first and the many short ones last, to fill in at the end: with the own-stack runs
last, two or three of them queued behind one process while the others ran out of work.
"""
from __future__ import annotations

import base64
import json
import os
import re

import pytest

OWN_STACK_FOLDERS = ("chaos", "bench")
# schemathesis: three runs (two on Redis) of 20-50 s each; inside its broker's unit, a model of the
# hand-out with a full run's test lengths ends the suite about 30 s later.
SEPARATE_STACK_MODULES = ("test_fuzz.py",)

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


def pytest_collection_modifyitems(config, items):
    """Mark each test with its unit and put the units in the order to hand them out (see the module);
    only in pytest-xdist's processes (a single process runs pytest's own order)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    units = {id(item): _unit(item) for item in items}
    for item in items:
        group = units[id(item)][1]
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: units[id(item)][0])  # stable: each rank keeps pytest's order


def _unit(item) -> tuple[int, str | None]:
    """The item's rank and group (None: a unit of its own)."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    if "broker_kind" in params:
        separate = f"-{item.path.stem}" if item.path.name in SEPARATE_STACK_MODULES else ""
        return 0, f"stack-{params['broker_kind']}{separate}"
    if "own_broker_kind" in params or item.path.parent.name in OWN_STACK_FOLDERS:
        return 1, None
    return 2, item.nodeid.partition("::")[0]

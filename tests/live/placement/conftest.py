"""Placement called directly (no Celery): a worker runtime on the live stack's PostgreSQL and peers."""
import pytest

from settings import Settings
from tasks.runtime import WorkerRuntime
from tests.placement.harness import Placement


@pytest.fixture()
def runtime(stack_env, empty_tables, peers):
    runtime = WorkerRuntime(Settings.from_env(stack_env["env"]))
    yield runtime
    runtime.close_peers()
    runtime.db.dispose()


@pytest.fixture()
def jobs(runtime):
    return Placement(runtime.db, runtime.catalog, runtime.carts, runtime.limits, runtime.policy)

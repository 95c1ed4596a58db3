"""Ordinary configuration: every usual form of DATABASE_URL starts the service; a wrong value of any
variable stops the API (under gunicorn), the worker, Flower and the flask CLI with one line naming it,
not a traceback; commands that need no database do not touch it; and processes started at once on
an empty database migrate it (AUTO_MIGRATE, on by default)."""
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

import migrations
from devstack import stack as procs
from devstack.stack import Stack

ROOT = procs.ROOT
COMMANDS = {
    "api": ["gunicorn", "-b", "127.0.0.1:{port}", "web:create_app()"],  # with ./gunicorn.conf.py, as deployed
    "worker": ["celery", "-A", "tasks", "worker", "--pool", "threads"],
    "cli": ["flask", "--app", "web", "migrate"],
    "flower": ["celery", "-A", "tasks", "flower", "--address=127.0.0.1", "--port={port}"],
}


def _run(command: list[str], database_url: str, **variables) -> subprocess.CompletedProcess:
    argv = [str(procs.BIN / command[0])] + [arg.format(port=procs.free_port()) for arg in command[1:]]
    env = {**os.environ, "DATABASE_URL": database_url, "AUTH_DISABLED": "true",
           "CATALOG_URL": "http://127.0.0.1:9", "CART_URL": "http://127.0.0.1:9",
           "CELERY_BROKER_URL": f"redis://127.0.0.1:{procs.free_port()}/0", "FLOWER_BASIC_AUTH": "ops:secret",
           "PYTHONWARNINGS": "ignore::UserWarning", **variables}  # Celery's warning about running as root (as CI does)
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _stopped_naming(result: subprocess.CompletedProcess, variable: str) -> None:
    """The process stopped (status 1) with its last line naming `variable`, and no traceback."""
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 1, lines
    assert "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith(variable), lines


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2"])
def test_each_usual_form_of_the_database_url_works(database_url, scheme):
    url = scheme + "://" + database_url.split("://", 1)[1]

    result = _run(COMMANDS["cli"], url)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "schema is up to date"


WRONG = {
    "unknown scheme": ("mysql://orders@127.0.0.1/orders", "not PostgreSQL's"),
    "unreachable host": ("postgresql://postgres@127.0.0.1:{port}/orders", "cannot connect to PostgreSQL"),
}


@pytest.mark.parametrize("process", ["api", "worker", "cli"])  # Flower never connects to the database
@pytest.mark.parametrize("wrong", sorted(WRONG))
def test_a_wrong_database_url_stops_the_process_with_one_line_naming_it(process, wrong):
    url, reason = WRONG[wrong]

    result = _run(COMMANDS[process], url.format(port=procs.free_port()))

    _stopped_naming(result, "DATABASE_URL")
    assert reason in result.stderr.strip().splitlines()[-1]


# A wrong value of a variable each process reads (and one every process reads).
WRONG_VALUES = [
    ("api", "WEB_WORKERS", "x"), ("worker", "WORKER_POOL", "x"), ("worker", "WORKER_METRICS_PORT", "x"),
    ("flower", "FLOWER_BASIC_AUTH", "ops"), ("cli", "AUTO_MIGRATE", "perhaps"),
    *[(process, "LOG_FORMAT", "x") for process in sorted(COMMANDS)],
]


@pytest.mark.parametrize(("process", "variable", "value"), WRONG_VALUES)
def test_a_wrong_value_stops_the_process_with_one_line_naming_its_variable(database_url, process, variable, value):
    result = _run(COMMANDS[process], database_url, **{variable: value})

    _stopped_naming(result, variable)


def test_a_command_that_needs_no_database_does_not_touch_it():
    # Nothing listens at this DATABASE_URL: a connection attempt would stop the command.
    result = _run(["flask", "--app", "web", "mint-token", "--sub", "7"],
                  f"postgresql://postgres@127.0.0.1:{procs.free_port()}/orders",
                  AUTH_DISABLED="false", JWT_SECRET="s" * 32)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2  # a JWT: header.claims.signature


def test_the_api_and_a_worker_started_at_once_on_an_empty_database_migrate_it(tmp_path):
    # The local stacks migrate their database before starting anything; a deployment may leave it to
    # the processes, as docker-compose.yml does.
    with Stack(tmp_path) as stack:
        stack.start_database(migrated=False)
        stack.start_broker()
        assert stack.env.get("AUTO_MIGRATE", "true") == "true"
        with ThreadPoolExecutor(2) as pool:  # the stack stops whichever started, whatever fails
            for future in [pool.submit(stack.start_api, 1, 1), pool.submit(stack.start_worker)]:
                future.result()

        engine = create_engine(stack.database_url)
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        engine.dispose()
        assert version == ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
        # Both came up: the one that found the schema migrated (or being migrated: the advisory lock)
        # did not fail on it.
        assert stack.api.alive() and stack.workers[0].alive()

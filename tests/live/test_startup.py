"""Ordinary configuration: every usual form of DATABASE_URL starts the service, and a wrong one stops
the API (under gunicorn), the worker and the flask CLI with one line naming it, not a traceback."""
import os
import subprocess

import pytest

from devstack import stack as procs

ROOT = procs.ROOT
COMMANDS = {
    "api": ["gunicorn", "-b", "127.0.0.1:{port}", "web:create_app()"],  # with ./gunicorn.conf.py, as deployed
    "worker": ["celery", "-A", "tasks", "worker", "--pool", "threads"],
    "cli": ["flask", "--app", "web", "migrate"],
}


def _run(command: str, database_url: str) -> subprocess.CompletedProcess:
    argv = [str(procs.BIN / command[0])] + [arg.format(port=procs.free_port()) for arg in command[1:]]
    env = {**os.environ, "DATABASE_URL": database_url, "AUTH_DISABLED": "true",
           "CATALOG_URL": "http://127.0.0.1:9", "CART_URL": "http://127.0.0.1:9",
           "CELERY_BROKER_URL": f"redis://127.0.0.1:{procs.free_port()}/0",
           "PYTHONWARNINGS": "ignore::UserWarning"}  # Celery's warning about running as root (as CI does)
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


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


@pytest.mark.parametrize("process", sorted(COMMANDS))
@pytest.mark.parametrize("wrong", sorted(WRONG))
def test_a_wrong_database_url_stops_the_process_with_one_line_naming_it(process, wrong):
    url, reason = WRONG[wrong]

    result = _run(COMMANDS[process], url.format(port=procs.free_port()))

    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 1
    assert len(output) == 1, output
    assert output[0].startswith("DATABASE_URL") and reason in output[0]

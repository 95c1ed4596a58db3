"""Settings fail fast and name what is wrong."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from settings import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[1]
BASE = {"DATABASE_URL": "postgresql://db/x", "CELERY_BROKER_URL": "redis://r/0"}


def test_required_values_are_named_when_missing():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({"CELERY_BROKER_URL": "redis://r/0"})
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL"):
        Settings.from_env({"DATABASE_URL": "postgresql://db/x"})


def test_values_are_typed_and_checked():
    settings = Settings.from_env({**BASE, "JOB_RETRY_DEADLINE_SECONDS": "90", "AUTO_MIGRATE": "false"})
    assert settings.retry_deadline == 90.0 and settings.auto_migrate is False
    with pytest.raises(ConfigError, match="JOB_RETRY_DEADLINE_SECONDS"):
        Settings.from_env({**BASE, "JOB_RETRY_DEADLINE_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="BATCH_SIZE"):
        Settings.from_env({**BASE, "BATCH_SIZE": "0"})
    with pytest.raises(ConfigError, match="AUTO_MIGRATE"):
        Settings.from_env({**BASE, "AUTO_MIGRATE": "perhaps"})


def test_waits_longer_than_the_visibility_timeout_are_refused():
    with pytest.raises(ConfigError, match="VISIBILITY_TIMEOUT"):
        Settings.from_env({**BASE, "BROKER_VISIBILITY_TIMEOUT_SECONDS": "100", "TASK_TIME_LIMIT_SECONDS": "150"})


def test_the_worker_needs_both_peer_urls():
    with pytest.raises(ConfigError, match="CATALOG_URL and CART_URL"):
        Settings.from_env(BASE).require_peers()
    settings = Settings.from_env({**BASE, "CATALOG_URL": "http://c", "CART_URL": "http://k"})
    assert settings.require_peers() == ("http://c", "http://k")


def test_the_api_needs_a_token_key_unless_auth_is_switched_off_explicitly():
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        Settings.from_env(BASE).require_auth()
    with pytest.raises(ConfigError, match="at least 32"):
        Settings.from_env({**BASE, "JWT_SECRET": "short"}).require_auth()
    Settings.from_env({**BASE, "JWT_SECRET": "s" * 32}).require_auth()
    Settings.from_env({**BASE, "AUTH_DISABLED": "true"}).require_auth()


def test_the_visibility_timeout_only_binds_a_redis_broker():
    waits = {"BROKER_VISIBILITY_TIMEOUT_SECONDS": "100", "TASK_TIME_LIMIT_SECONDS": "150"}
    for url in ("amqp://guest:guest@rabbit:5672/orders", "pyamqp://rabbit//"):
        settings = Settings.from_env({**BASE, **waits, "CELERY_BROKER_URL": url})
        assert not settings.broker_is_redis
    assert Settings.from_env(BASE).broker_is_redis


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2"])
def test_each_usual_postgresql_url_is_given_the_installed_driver(scheme):
    rest = "://orders:p%40ss@db:5433/orders?sslmode=require"

    settings = Settings.from_env({**BASE, "DATABASE_URL": scheme + rest})

    assert settings.database_url == "postgresql+psycopg2" + rest


@pytest.mark.parametrize("url", ["mysql://orders@db/orders", "postgresql+psycopg://orders@db/orders",
                                 "db:5432/orders"])
def test_a_database_url_that_is_not_postgresql_over_psycopg2_is_refused_by_name(url):
    with pytest.raises(ConfigError, match="^DATABASE_URL .*postgresql://user:password@host:5432/database"):
        Settings.from_env({**BASE, "DATABASE_URL": url})


def test_waiting_requests_are_bounded_and_may_be_switched_off():
    assert Settings.from_env(BASE).max_waiting_requests == 2
    assert Settings.from_env({**BASE, "MAX_WAITING_REQUESTS": "0"}).max_waiting_requests == 0
    with pytest.raises(ConfigError, match="MAX_WAITING_REQUESTS"):
        Settings.from_env({**BASE, "MAX_WAITING_REQUESTS": "-1"})


@pytest.mark.parametrize(("variable", "value"), [
    ("WEB_WORKERS", "x"), ("WEB_THREADS", "0"), ("PORT", "99999"), ("ACCESS_LOG", "maybe"), ("LOG_FORMAT", "xml"),
    ("LOG_LEVEL", "loud"), ("WORKER_POOL", "gevent"), ("WORKER_METRICS_PORT", "-1"), ("FLOWER_MAX_TASKS", "many"),
    ("FLOWER_BASIC_AUTH", "ops"), ("FLOWER_BASIC_AUTH", "ops:pw,:pw"),
])
def test_every_process_variable_is_checked_and_named(variable, value):
    with pytest.raises(ConfigError, match=f"^{variable}"):
        Settings.from_env({**BASE, variable: value})


def test_process_variables_are_typed():
    settings = Settings.from_env({**BASE, "WEB_WORKERS": "3", "PORT": "8100", "ACCESS_LOG": "true", "LOG_FORMAT": "JSON",
                                  "WORKER_POOL": "prefork", "WORKER_METRICS_PORT": "9100",
                                  "FLOWER_BASIC_AUTH": "ops:pw, admin:pw2", "FLOWER_MAX_TASKS": "50"})
    assert (settings.web_workers, settings.port, settings.access_log, settings.log_format) == (3, 8100, True, "json")
    assert (settings.worker_pool, settings.worker_metrics_port, settings.flower_max_tasks) == ("prefork", 9100, 50)
    assert settings.require_flower_auth() == ["ops:pw", "admin:pw2"]
    with pytest.raises(ConfigError, match="^FLOWER_BASIC_AUTH"):
        Settings.from_env(BASE).require_flower_auth()


def test_no_module_reads_the_environment_at_import():
    """Settings are read by a process's entry point and passed in: importing any part of the service
    with no variable set (none of DATABASE_URL, CELERY_BROKER_URL, ...) succeeds."""
    modules = ["web", "web.commands", "tasks", "tasks.orders", "tasks.webhooks", "tasks.dispatch", "tasks.runtime",
               "celeryconfig", "observability.logs", "observability.metrics", "placement.batch", "webhooks.sending"]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONWARNINGS": "error"}
    result = subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_retention_keeps_30_days_by_default_and_everything_at_0():
    assert (Settings.from_env(BASE).retention_days, Settings.from_env(BASE).retention_batch_size) == (30, 500)
    assert Settings.from_env({**BASE, "RETENTION_DAYS": "0"}).retention_days == 0
    with pytest.raises(ConfigError, match="RETENTION_DAYS"):
        Settings.from_env({**BASE, "RETENTION_DAYS": "-1"})
    with pytest.raises(ConfigError, match="RETENTION_BATCH_SIZE"):
        Settings.from_env({**BASE, "RETENTION_BATCH_SIZE": "0"})

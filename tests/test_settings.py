"""Settings fail fast and name what is wrong."""
import pytest

from settings import ConfigError, Settings

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


def test_retention_keeps_30_days_by_default_and_everything_at_0():
    assert (Settings.from_env(BASE).retention_days, Settings.from_env(BASE).retention_batch_size) == (30, 500)
    assert Settings.from_env({**BASE, "RETENTION_DAYS": "0"}).retention_days == 0
    with pytest.raises(ConfigError, match="RETENTION_DAYS"):
        Settings.from_env({**BASE, "RETENTION_DAYS": "-1"})
    with pytest.raises(ConfigError, match="RETENTION_BATCH_SIZE"):
        Settings.from_env({**BASE, "RETENTION_BATCH_SIZE": "0"})

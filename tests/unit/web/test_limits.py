"""The rate limiter always counts in Redis, whichever broker carries the tasks."""
import pytest

from settings import ConfigError, Settings
from web.limits import _storage

BASE = {"DATABASE_URL": "postgresql://db/x"}


def test_with_redis_as_broker_the_limiter_shares_it_unless_told_otherwise():
    assert _storage(Settings.from_env({**BASE, "CELERY_BROKER_URL": "redis://r/0"})) == "redis://r/0"
    assert _storage(Settings.from_env({**BASE, "CELERY_BROKER_URL": "redis://r/0",
                                       "RATE_LIMIT_STORAGE_URI": "redis://other/1"})) == "redis://other/1"


def test_with_rabbitmq_as_broker_the_limiter_needs_a_redis_of_its_own():
    rabbit = {**BASE, "CELERY_BROKER_URL": "amqp://guest:guest@rabbit:5672//"}
    with pytest.raises(ConfigError, match="RATE_LIMIT_STORAGE_URI"):
        _storage(Settings.from_env(rabbit))
    assert _storage(Settings.from_env({**rabbit, "RATE_LIMIT_STORAGE_URI": "redis://r/0"})) == "redis://r/0"

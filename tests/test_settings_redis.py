"""The service's Redis (rate limits, the wake-up flag) is there whichever broker carries the tasks."""
import pytest
from kombu import Connection

from settings import ConfigError, Settings

BASE = {"DATABASE_URL": "postgresql://db/x"}


def test_with_redis_as_broker_the_service_shares_it_unless_told_otherwise():
    assert Settings.from_env({**BASE, "CELERY_BROKER_URL": "redis://r/0"}).redis_url == "redis://r/0"
    assert Settings.from_env({**BASE, "CELERY_BROKER_URL": "redis://r/0",
                              "RATE_LIMIT_STORAGE_URI": "redis://other/1"}).redis_url == "redis://other/1"


def test_with_rabbitmq_as_broker_the_service_needs_a_redis_of_its_own():
    rabbit = {**BASE, "CELERY_BROKER_URL": "amqp://guest:guest@rabbit:5672//"}
    with pytest.raises(ConfigError, match="RATE_LIMIT_STORAGE_URI"):
        Settings.from_env(rabbit).redis_url  # noqa: B018 - reading it is the check
    assert Settings.from_env({**rabbit, "RATE_LIMIT_STORAGE_URI": "redis://r/0"}).redis_url == "redis://r/0"


def test_a_failover_list_of_rabbitmq_nodes_is_rabbitmq_and_celery_gets_every_node():
    """CELERY_BROKER_URL may list a cluster's nodes, ';'-separated: Celery tries the next when one is down."""
    nodes = "amqp://o:p@rabbit1:5672/orders;amqp://o:p@rabbit2:5672/orders;amqp://o:p@rabbit3:5672/orders"
    settings = Settings.from_env({**BASE, "CELERY_BROKER_URL": nodes, "RATE_LIMIT_STORAGE_URI": "redis://r/0"})
    assert not settings.broker_is_redis
    assert settings.redis_url == "redis://r/0"
    assert [url.split("@")[1] for url in Connection(settings.broker_url).alt] == [
        "rabbit1:5672/orders", "rabbit2:5672/orders", "rabbit3:5672/orders"]

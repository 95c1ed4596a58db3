"""The Redis transport reuses one client per connection pool, and messages still go through."""
import pytest
from kombu import Connection

from tasks import transport


@pytest.fixture()
def redis_url(broker):
    if broker.kind != "redis":
        pytest.skip("Redis only")
    transport.use_for_redis_urls()
    return broker.url.rsplit("/", 1)[0] + "/14"  # a database of its own on the session's Redis


def test_one_client_per_pool_and_a_new_one_for_a_new_pool(redis_url):
    with Connection(redis_url) as connection:
        channel = connection.default_channel
        assert isinstance(channel, transport.Channel)
        first = channel._create_client()
        assert channel._create_client() is first
        channel._disconnect_pools()  # what kombu does after a fork or a lost connection
        second = channel._create_client()
        assert second is not first
        assert second.connection_pool is channel.pool


def test_messages_go_through_and_the_url_keeps_its_scheme(redis_url):
    with Connection(redis_url) as connection:
        assert connection.as_uri().startswith("redis://")
        queue = connection.SimpleQueue("transport-test")
        try:
            for n in range(3):
                queue.put({"n": n})
            received = []
            for _ in range(3):
                message = queue.get(timeout=5)
                received.append(message.payload["n"])
                message.ack()
            assert received == [0, 1, 2]
        finally:
            queue.queue.delete()
            queue.close()

"""The Redis transport: messages go through, the URL keeps its scheme, and a worker's teardown after a
Redis restart ends in a connection error, never an AttributeError."""
import socket

import pytest
from celery.worker.consumer.consumer import COLLECT_SOCKET_TIMEOUT
from kombu import Connection
from kombu.common import ignore_errors

from devstack import stack as procs
from tasks import transport


@pytest.fixture()
def redis_url(broker):
    if broker.kind != "redis":
        pytest.skip("Redis only")
    transport.use_for_redis_urls()
    return broker.url.rsplit("/", 1)[0] + "/14"  # a database of its own on the session's Redis


@pytest.fixture()
def private_redis(tmp_path):
    """A Redis of this test's own, which it kills."""
    transport.use_for_redis_urls()
    port = procs.free_port()
    server = procs.start_redis(port, tmp_path)
    yield server, f"redis://127.0.0.1:{port}/0"
    server.kill()


def test_messages_go_through_and_the_url_keeps_its_scheme(redis_url):
    with Connection(redis_url) as connection:
        assert isinstance(connection.default_channel, transport.Channel)
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


def test_the_teardown_after_a_redis_restart_is_a_connection_loss_not_a_crash(private_redis):
    """celery 5.7.0's consumer on a lost connection (`on_connection_error_after_connected`): collect(), then
    close() under ignore_errors. Set up as a worker has it when Redis dies: the task channel holds an
    unacked message and a pending BRPOP, a later channel (remote control) holds an unacked message too."""
    server, url = private_redis
    connection = Connection(url)
    tasks = connection.default_channel
    for name in ("celery", "pidbox"):
        connection.SimpleQueue(name).put({"queue": name})
    connection.SimpleQueue("idle")  # empty: the worker's BRPOP on it waits
    assert tasks.basic_get("celery", no_ack=False) is not None  # a task being worked on (acks late)
    tasks.basic_consume("idle", False, lambda message: None, consumer_tag="worker")
    try:
        connection.drain_events(timeout=0.3)  # leaves a BRPOP in flight, as the worker's loop does
    except socket.timeout:
        pass
    assert tasks._in_poll  # kombu's mark of that BRPOP
    remote_control = connection.channel()
    assert remote_control.basic_get("pidbox", no_ack=False) is not None

    server.kill()
    try:
        connection.collect(socket_timeout=COLLECT_SOCKET_TIMEOUT)
    except Exception:  # noqa: BLE001, S110 - celery ignores it the same way
        pass
    # The state the crash needs: the task channel is still open, its transport has no client.
    assert not tasks.closed and tasks.connection.client is None

    ignore_errors(connection, connection.close)  # raised AttributeError ('hostname') before the fix

    assert tasks.closed

"""With RabbitMQ as the broker: orders go through a durable quorum queue, publishes are confirmed,
countdowns wait in the broker, readiness checks it. (The Redis pass skips these; every other test runs on
both.)"""
import time

import psutil
import pytest
from sqlalchemy import text

AMQP_PORT = 5672


@pytest.fixture()
def rabbitmq(stack_env):
    broker = stack_env["broker"]
    if broker.kind != "rabbitmq":
        pytest.skip("RabbitMQ only")
    return broker


def test_an_order_goes_through_a_durable_quorum_queue_and_completes_once(api, peers, engine, rabbitmq):
    job = api.wait(api.submit(71, [{"product_id": 30, "quantity": 2}]).json()["job_id"])

    assert job["status"] == "completed", job
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM orders WHERE job_id = :j"),
                                  {"j": job["job_id"]}).scalar() == 1
    assert peers.product(30)["quantity"] == 1000 - 2
    queue = rabbitmq.queues()["celery"]
    assert queue["type"] == "quorum" and queue["durable"], queue


def test_the_api_publishes_with_publisher_confirms(api, api_server, rabbitmq):
    assert api.submit(72, [{"product_id": 31, "quantity": 1}]).status_code == 202

    gunicorn = psutil.Process(api_server[1].popen.pid)
    ports = {c.laddr.port for p in [gunicorn, *gunicorn.children(recursive=True)]
             for c in p.net_connections("tcp") if c.raddr and c.raddr.port == AMQP_PORT}
    modes = rabbitmq.confirm_modes(ports)

    assert modes and all(modes), modes


def test_a_countdown_waits_in_the_broker_not_in_a_worker(api, publish, rabbitmq):
    api.wait(api.submit(73, [{"product_id": 32, "quantity": 1}]).json()["job_id"])

    publish(countdown=60)  # a late wake-up with nothing due: harmless when it comes

    deadline = time.monotonic() + 20  # RabbitMQ refreshes queue counts every few seconds
    while True:
        queues = rabbitmq.queues()
        delayed = {name: queue for name, queue in queues.items() if name.startswith("celery_delayed_")}
        if sum(queue["messages"] for queue in delayed.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert sum(queue["messages"] for queue in delayed.values()) == 1, queues
    assert {queue["type"] for queue in delayed.values()} == {"quorum"}
    assert queues["celery"]["messages"] == 0


def test_readiness_checks_rabbitmq_as_the_broker(api, rabbitmq):
    """(Readiness with Redis as the broker: tests/web/test_health.py.)"""
    ready = api.get("/readyz")

    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}

"""A broker of its own for each local stack the tests and the chaos run start: Redis or RabbitMQ.

Both give the stack's environment (CELERY_BROKER_URL, and with RabbitMQ the
rate limiter's Redis) and an `outage()` during which the service cannot reach
its broker, restored on exit even when the block inside fails.

* Redis: a redis-server process of the stack's own, without persistence; an
  outage kills it (its messages are lost, as in a real Redis restart) and starts it again.
* RabbitMQ: the machine's RabbitMQ node is shared, so the stack gets a virtual
  host of its own (its queues, exchanges and messages are invisible to every
  other vhost) and a Redis of its own for the rate limiter. An outage closes
  every connection of that vhost and refuses new ones (a connection limit of 0):
  clients see what they see when the node goes down, while other stacks on the
  node carry on. Messages survive it, as they survive a restart of a node with
  durable quorum queues.
"""
from __future__ import annotations

import json
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from devstack import stack as procs

BROKERS = ("redis", "rabbitmq")
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672"


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    """Run rabbitmqctl against the local node; its output, or an error saying what to do."""
    try:
        result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise RuntimeError("rabbitmqctl not found: install RabbitMQ (.ci/run does), or pass --broker redis") from None
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}; "
                           "is RabbitMQ running? (rabbitmq-server -detached; or pass --broker redis)")
    return result.stdout


class RedisBroker:
    """A Redis of the stack's own, broker and rate-limiter storage at once."""

    kind = "redis"

    def __init__(self, log_dir: Path):
        self.redis, port = procs.start_redis_on_a_free_port(log_dir)
        self.url = f"redis://127.0.0.1:{port}/0"
        self.env = {"CELERY_BROKER_URL": self.url}
        self.processes = [self.redis]

    @contextmanager
    def outage(self) -> Iterator[None]:
        """Redis is down (killed, its messages gone) inside the block, up again after."""
        self.redis.kill()
        try:
            yield
        finally:
            self.redis.start()
            self.redis.wait_for_log("Ready to accept connections", timeout=20)

    def stop(self) -> None:
        self.redis.stop()


class RabbitBroker:
    """A vhost of the stack's own on the local RabbitMQ, and a Redis for the rate limiter."""

    kind = "rabbitmq"

    def __init__(self, log_dir: Path):
        self.vhost = f"orders-test-{uuid.uuid4().hex[:10]}"
        rabbitmqctl("add_vhost", self.vhost)
        try:
            rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
            self.limiter = RedisBroker(log_dir)
        except BaseException:
            rabbitmqctl("delete_vhost", self.vhost)
            raise
        self.url = f"{RABBITMQ_URL}/{self.vhost}"
        self.env = {"CELERY_BROKER_URL": self.url, "RATE_LIMIT_STORAGE_URI": self.limiter.url}
        self.processes = self.limiter.processes  # the node is shared: only the limiter's Redis is the stack's

    @contextmanager
    def outage(self) -> Iterator[None]:
        """Every connection to the vhost is closed and refused inside the block; accepted again after."""
        rabbitmqctl("set_vhost_limits", "-p", self.vhost, json.dumps({"max-connections": 0}))
        try:
            rabbitmqctl("close_all_connections", "-p", self.vhost, "broker outage (test)")
            yield
        finally:
            rabbitmqctl("clear_vhost_limits", "-p", self.vhost)

    def queues(self) -> dict[str, dict]:
        """The vhost's queues as RabbitMQ reports them: name -> {type, durable, messages}."""
        rows = rabbitmqctl("list_queues", "-p", self.vhost, "--no-table-headers", "name", "type", "durable",
                           "messages")
        queues = {}
        for row in rows.splitlines():
            name, kind, durable, messages = row.split("\t")
            queues[name] = {"type": kind, "durable": durable == "true", "messages": int(messages)}
        return queues

    def confirm_modes(self, client_ports: set[int]) -> list[bool]:
        """For each channel of the vhost's connections from these client ports: is it in confirm mode?"""
        rows = rabbitmqctl("list_connections", "--no-table-headers", "pid", "peer_port", "vhost")
        connections = {pid for pid, port, vhost in (row.split("\t") for row in rows.splitlines())
                       if vhost == self.vhost and int(port) in client_ports}
        rows = rabbitmqctl("list_channels", "--no-table-headers", "connection", "confirm")
        return [confirm == "true" for connection, confirm in (row.split("\t") for row in rows.splitlines())
                if connection in connections]

    def stop(self) -> None:
        try:
            rabbitmqctl("delete_vhost", self.vhost)
        finally:
            self.limiter.stop()


def start_broker(kind: str, log_dir: Path) -> RedisBroker | RabbitBroker:
    """A fresh broker of `kind` ('redis' or 'rabbitmq') for one stack."""
    if kind == "redis":
        return RedisBroker(log_dir)
    if kind == "rabbitmq":
        return RabbitBroker(log_dir)
    raise ValueError(f"unknown broker {kind!r}; choose one of {', '.join(BROKERS)}")

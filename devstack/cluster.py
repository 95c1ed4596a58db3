"""A 3-node RabbitMQ cluster of a run's own on this machine, for the chaos run and its test.

The machine's RabbitMQ node (rabbit@localhost, port 5672) serves other stacks and is
never touched: each node here has its own node name, AMQP and distribution ports,
data and log directories and configuration file. The nodes run as the `rabbitmq`
user through the packaged scripts, as the machine's node does, so they share its
Erlang cookie (/var/lib/rabbitmq/.erlang.cookie) and `rabbitmqctl -n <node>` reaches them.
Nodes 2 and 3 join node 1; the cluster gets a vhost and user of the run's own.

The service gets all three nodes as Celery's failover list (amqp://...;amqp://...;amqp://...),
and its order queue, a quorum queue declared once the cluster has formed, has a member
on every node: stopping one node (`outage`) loses no message.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from devstack import brokers
from devstack import stack as procs

NODES = 3


def installed() -> bool:
    """Whether this machine can run RabbitMQ nodes (rabbitmq-server and its CLI tools)."""
    return all(shutil.which(tool) for tool in ("rabbitmq-server", "rabbitmqctl", "rabbitmq-queues"))


def _run(argv: list[str], env: dict | None = None, timeout: float = 120) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


class Node:
    """One node of the cluster: its name, ports, directories and the environment that starts it."""

    def __init__(self, base: Path, index: int, run_id: str):
        self.name = f"orders-{run_id}-{index}@localhost"
        self.port, self.dist_port = procs.free_port(), procs.free_port()
        self.dir = base / f"node{index}"
        (self.dir / "log").mkdir(parents=True)
        (self.dir / "mnesia").mkdir()
        config = self.dir / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n")
        plugins = self.dir / "enabled_plugins"
        plugins.write_text("[].\n")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
        }

    def ctl(self, *args: str, timeout: float = 120) -> str:
        return _run(["rabbitmqctl", "-q", "-n", self.name, *args], timeout=timeout)

    def start(self) -> None:
        """Start the node in the background and wait until it serves (a stopped node rejoins its cluster)."""
        _run(["rabbitmq-server", "-detached"], env=self.env)
        # `wait` on the pid file: the detached node may not have registered with epmd yet.
        self.ctl("wait", "--timeout", "180", str(self.dir / "mnesia" / f"{self.name}.pid"), timeout=200)

    def stop(self) -> None:
        """Stop the node, Erlang VM and all: a clean shutdown that closes its clients' connections (a machine
        that dies leaves them to time out instead)."""
        self.ctl("stop")


class RabbitCluster:
    """A broker handle for `devstack.stack.Stack(log_dir, broker=cluster)`: three clustered nodes,
    a vhost and user of the run's own, and a Redis for the rate limiter (as with one RabbitMQ node)."""

    kind = "rabbitmq-cluster"

    def __init__(self, log_dir: Path):
        if not installed():
            raise RuntimeError("rabbitmq-server not found: install RabbitMQ (.ci/run does), or pass --broker redis")
        run_id = uuid.uuid4().hex[:8]
        # The nodes run as the rabbitmq user, which cannot enter the test's private temporary directories.
        self.base = Path(tempfile.mkdtemp(prefix=f"orders-cluster-{run_id}-"))
        self.base.chmod(0o755)
        self.nodes = [Node(self.base, index, run_id) for index in range(1, NODES + 1)]
        self.log_dir = log_dir
        self.limiter: brokers.RedisBroker | None = None
        self.vhost, self.user, password = f"orders-{run_id}", f"orders-{run_id}", secrets.token_hex(12)
        try:
            if os.geteuid() == 0:
                self._give_to_rabbitmq()
            with ThreadPoolExecutor(NODES) as pool:
                list(pool.map(Node.start, self.nodes))
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.name)
                node.ctl("start_app")
            first.ctl("add_vhost", self.vhost)
            first.ctl("add_user", self.user, password)
            first.ctl("set_permissions", "-p", self.vhost, self.user, ".*", ".*", ".*")
            self.limiter = brokers.RedisBroker(log_dir)
        except BaseException:
            self.stop()
            raise
        self.urls = [f"amqp://{self.user}:{password}@127.0.0.1:{node.port}/{self.vhost}" for node in self.nodes]
        self.url = ";".join(self.urls)  # Celery's failover list: the next node when one is unreachable
        self.env = {"CELERY_BROKER_URL": self.url, "RATE_LIMIT_STORAGE_URI": self.limiter.url}
        self.processes = self.limiter.processes  # the nodes are daemons, stopped by `stop`

    def _give_to_rabbitmq(self) -> None:
        account = pwd.getpwnam("rabbitmq")
        for path in [self.base, *self.base.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid)

    def stop_node(self, index: int) -> None:
        """Stop node `index` (0-based); its clients reconnect to the next node of their list."""
        self.nodes[index].stop()

    def start_node(self, index: int) -> None:
        """Start node `index` again; it rejoins the cluster and its quorum queue members catch up."""
        self.nodes[index].start()

    @contextmanager
    def outage(self, index: int = 0) -> Iterator[None]:
        """Node `index` (by default the first, which every client tries first) is down inside the block,
        up again after, even when the block fails."""
        self.stop_node(index)
        try:
            yield
        finally:
            self.start_node(index)

    def running_nodes(self) -> list[str]:
        """The nodes the cluster sees running, as the first running node reports them."""
        status = json.loads(self._any_running().ctl("cluster_status", "--formatter", "json"))
        return sorted(status["running_nodes"])

    def queue_members(self) -> dict[str, list[str]]:
        """The vhost's quorum queues and the nodes each has a member on."""
        rows = self._any_running().ctl("list_queues", "-p", self.vhost, "--formatter", "json",
                                       "name", "type", "members")
        return {row["name"]: sorted(row["members"]) for row in json.loads(rows) if row["type"] == "quorum"}

    def _any_running(self) -> Node:
        for node in self.nodes:
            if subprocess.run(["rabbitmqctl", "-q", "-n", node.name, "ping"], capture_output=True,
                              timeout=60).returncode == 0:
                return node
        raise RuntimeError("no node of the cluster is running")

    def stop(self) -> None:
        """Stop every node and the limiter's Redis; keep the nodes' logs in `log_dir`, remove their data."""
        try:
            for node in self.nodes:
                subprocess.run(["rabbitmqctl", "-q", "-n", node.name, "stop"], capture_output=True, timeout=120)
            if self.limiter is not None:
                self.limiter.stop()
        finally:
            for node in self.nodes:
                shutil.copytree(node.dir / "log", self.log_dir / node.dir.name, dirs_exist_ok=True)
            shutil.rmtree(self.base, ignore_errors=True)

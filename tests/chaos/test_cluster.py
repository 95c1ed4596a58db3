"""The chaos run in its short form on a 3-node RabbitMQ cluster of its own (devstack.cluster): one node is
stopped mid-run and started again, on top of the worker kills and peer faults, and nothing is lost."""
import socket

import pytest
from kombu import Connection, Queue

from bench import chaos
from devstack import cluster
from devstack.stack import Proc, Stack, worker_argv

pytestmark = pytest.mark.skipif(not cluster.installed(),
                                reason="rabbitmq-server is not installed: a cluster needs RabbitMQ nodes (.ci/run installs it)")


def test_a_cluster_that_loses_a_node_loses_nothing(tmp_path):
    args = chaos.parser().parse_args([
        "--broker", "rabbitmq-cluster", "--orders", "300", "--clients", "32", "--workers", "2", "--kills", "3",
        "--broker-outages", "1", "--chaos-interval", "1", "--hot-stock", "100", "--settle-timeout", "240",
        "--cancels", "20", "--own-postgres", "--out", str(tmp_path / "chaos.json"),
    ])

    report = chaos.run(args)  # starts the cluster once, stops it in a finally

    assert report["violations"] == {}, report
    assert report["failed"] == 0 and report["worker_exits"] == 0
    assert report["faults_injected"]["worker_sigkill"] == 3
    assert report["faults_injected"]["broker_outage"] == 1  # the first node stopped, then started again
    assert report["cluster_nodes_running"] == 3
    # The order queue, a quorum queue, has a member on every node (and so every other quorum queue).
    assert report["quorum_queue_members"]["celery"] == 3
    assert set(report["quorum_queue_members"].values()) == {3}
    assert report["completed"] > 0 and report["rejected"] > 0
    assert report["jobs"] == report["orders_submitted"]
    assert report["cancellations_requested"] == report["cancellations_completed"] == 20


def test_a_worker_waits_out_a_control_queue_still_held_by_another_connection(tmp_path):
    """What a failover can meet: the worker's exclusive control queue still belongs to its connection to
    the stopped node. The worker retries (broker_channel_error_retry) instead of exiting."""
    with Stack(tmp_path, broker="rabbitmq") as stack:
        stack.start_database()
        stack.start_broker()
        with Connection(stack.broker.url) as holder:
            Queue(f"worker1@{socket.gethostname()}.celery.pidbox", exclusive=True, auto_delete=True)(
                holder.channel()).declare()
            worker = stack.add(Proc("worker1", worker_argv("worker1"), stack.env, tmp_path))
            worker.wait_for_log("RESOURCE_LOCKED")
        worker.wait_for_log("ready.")  # the queue is free again: the worker comes up

        assert worker.alive()
        assert "Unrecoverable error" not in worker.log_text()

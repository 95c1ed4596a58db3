"""The chaos run in its short form on a 3-node RabbitMQ cluster of its own (devstack.cluster): one node is
stopped mid-run and started again, on top of the worker kills and peer faults, and nothing is lost."""
import pytest

from bench import chaos
from devstack import cluster

pytestmark = pytest.mark.skipif(not cluster.installed(),
                                reason="rabbitmq-server is not installed: a cluster needs RabbitMQ nodes (.ci/run installs it)")


def test_a_cluster_that_loses_a_node_loses_nothing(tmp_path):
    args = chaos.parser().parse_args([
        "--broker", "rabbitmq-cluster", "--orders", "300", "--clients", "32", "--workers", "2", "--kills", "3",
        "--broker-outages", "1", "--chaos-interval", "2.5", "--hot-stock", "100", "--settle-timeout", "240",
        "--cancels", "20", "--out", str(tmp_path / "chaos.json"),
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

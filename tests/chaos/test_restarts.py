"""Broker restarts under load (bench/restarts.py at full length): no worker exits, every order completes."""
from bench import restarts


def test_twenty_redis_restarts_while_orders_flow(tmp_path):
    args = restarts.parser().parse_args(["--redis-restarts", "20", "--interval", "1.5", "--down-seconds", "0.5",
                                         "--out", str(tmp_path / "restarts.json")])

    report = restarts.run(args)

    assert report["violations"] == {}, report
    assert report["worker_exits"] == 0
    assert report["accepted"] > 20 * 10  # orders flowed across every restart
    assert report["jobs_by_status"] == {"completed": report["accepted"]}

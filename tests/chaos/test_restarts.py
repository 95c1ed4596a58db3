"""Restarts under load (bench/restarts.py): no worker exits, every accepted order completes, and while
PostgreSQL is down a submission is answered 503 with Retry-After."""
from bench import restarts


def _run(tmp_path, *argv):
    return restarts.run(restarts.parser().parse_args([*argv, "--out", str(tmp_path / "restarts.json")]))


def test_twenty_redis_restarts_while_orders_flow(tmp_path):
    # A PostgreSQL of its own: the suite's other stacks share the machine's (100 connections). Two
    # clients keep orders flowing across every restart, some of them while Redis is down.
    report = _run(tmp_path, "--redis-restarts", "20", "--interval", "1.5", "--down-seconds", "0.5", "--clients", "2",
                  "--own-postgres")

    assert report["violations"] == {}, report
    assert report["worker_exits"] == 0
    assert report["accepted"] > 20 * 10  # orders flowed across every restart
    assert {kind for answers in report["answers"].values() for kind in answers} == {"202"}
    assert report["answers"]["while redis was down"]["202"] > 20
    assert report["jobs_by_status"] == {"completed": report["accepted"]}


def test_postgres_restarts_refuse_with_503_and_lose_nothing(tmp_path):
    report = _run(tmp_path, "--postgres-restarts", "2", "--postgres-down-seconds", "3", "--redis-restarts", "1",
                  "--interval", "1.5", "--down-seconds", "1")

    assert report["violations"] == {}, report
    assert report["answers"]["while postgres was down"]["503 database unavailable, Retry-After"] > 0
    # Accepted with Redis down after the PostgreSQL restarts: no wake-up, only the sweeper could dispatch these.
    assert report["answers"]["while redis was down"]["202"] > 0
    assert report["jobs_by_status"] == {"completed": report["accepted"]}
    assert report["worker_exits"] == 0

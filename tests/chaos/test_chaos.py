"""The chaos run in its shortened form, against each broker, with 2 and with 4 worker processes, and a
flash sale under the same faults: every invariant holds after faults of every kind."""
import pytest

from bench import chaos


@pytest.mark.parametrize("workers", [2, 4])
def test_nothing_is_lost_doubled_or_oversold_under_chaos(tmp_path, own_broker_kind, workers):
    # A fault a second (after the killed worker is back): every one of them lands while hundreds of jobs
    # are still unfinished. A PostgreSQL of the run's own: 4 workers hold most of a shared server's connections.
    args = chaos.parser().parse_args([
        "--broker", own_broker_kind, "--orders", "400", "--clients", "32", "--workers", str(workers), "--kills", "3",
        "--broker-outages", "1", "--chaos-interval", "1", "--hot-stock", "150", "--settle-timeout", "240",
        "--cancels", "20", "--own-postgres", "--out", str(tmp_path / "chaos.json"),
    ])

    report = chaos.run(args)

    assert report["violations"] == {}, report
    faults = report["faults_injected"]
    assert faults["worker_sigkill"] == 3 and faults["broker_outage"] == 1
    assert faults["error"] > 0 and faults["put_apply_then_error"] > 0 and faults["hang"] > 0
    assert report["completed"] > 0
    assert report["rejected"] > 0  # the hot products ran out part-way
    assert report["jobs"] == report["orders_submitted"]  # a key sent twice made one job
    assert report["cancellations_requested"] == report["cancellations_completed"] == 20


def test_a_flash_sale_places_exactly_its_stock_under_chaos(tmp_path, own_broker_kind):
    # 1,000 customers race for 400 units of one product while the broker goes away, workers are killed and
    # the catalog fails (5xx, writes applied then answered 503, hangs): enough orders for the sale to outlast
    # the faults, one a second.
    args = chaos.parser().parse_args([
        "--broker", own_broker_kind, "--sale", "400", "--orders", "1000", "--clients", "32", "--workers", "2",
        "--kills", "3", "--broker-outages", "1", "--chaos-interval", "1", "--settle-timeout", "240",
        "--own-postgres", "--out", str(tmp_path / "chaos.json"),
    ])

    report = chaos.run(args)

    assert report["violations"] == {}, report
    faults = report["faults_injected"]
    assert faults["worker_sigkill"] == 3 and faults["broker_outage"] == 1
    assert faults["error"] > 0 and faults["put_apply_then_error"] > 0
    assert (report["completed"], report["rejected"], report["sale_stock_left"]) == (400, 600, 0)
    assert report["units_oversold"] == 0 and report["ledger_mismatches"] == 0
    assert report["cancellations_requested"] == 0  # a cancellation would give its unit back
    assert report["jobs"] == report["orders_submitted"]  # a key sent twice made one job

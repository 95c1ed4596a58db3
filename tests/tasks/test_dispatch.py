"""Wake-ups: a submission publishes only when it raises its lane's wake-up flag (a real Redis of the
test's own), and an import at work never stands for a single order's; retry wake-ups come one per
whole second, never a countdown the broker would refuse."""
from pathlib import Path

import pytest
import redis

from devstack.brokers import RedisBroker
from models.jobs import IMPORTS, LANES, SINGLES
from process_local import ProcessLocal
from tasks import dispatch

LOGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs" / "tasks"


@pytest.fixture(scope="module")
def flag_redis():
    broker = RedisBroker(LOGS)
    yield redis.Redis.from_url(broker.url)
    broker.stop()


@pytest.fixture()
def published(monkeypatch, flag_redis):
    """The wake-ups published, as (task, lane, countdown), with the flags on the test's Redis, down at
    the start."""
    flag_redis.delete(*(dispatch.flag_key(lane) for lane in LANES))
    monkeypatch.setattr(dispatch, "_flags", lambda: ProcessLocal(lambda: flag_redis))
    sent = []
    monkeypatch.setattr(dispatch, "_publish", lambda task, args, countdown, kwargs=None: sent.append(
        (task, (kwargs or {}).get("lane"), countdown)) or True)
    return sent


def test_a_submission_publishes_only_when_it_raises_the_flag(published, flag_redis):
    assert dispatch.wake()  # raises the flag and publishes
    assert dispatch.wake()  # the flag is up: an execution is on its way
    assert published == [(dispatch.PLACE_ORDERS, SINGLES, None)]
    assert 0 < flag_redis.pttl(dispatch.flag_key(SINGLES)) <= dispatch.FLAG_TTL_MS  # it lapses on its own

    dispatch.idle(SINGLES)  # the execution found nothing due and took it down
    assert dispatch.wake()
    assert published == [(dispatch.PLACE_ORDERS, SINGLES, None)] * 2


def test_an_execution_at_work_on_imports_does_not_stand_for_a_single_orders_wake_up(published):
    dispatch.busy(IMPORTS)  # an execution placing an import's lines, claiming again after each batch

    assert dispatch.wake(IMPORTS) and dispatch.wake(SINGLES)

    assert published == [(dispatch.PLACE_ORDERS, SINGLES, None)]  # only the single order's lane is woken


def test_a_wake_up_that_could_not_be_published_leaves_the_flag_down(published, flag_redis, monkeypatch):
    monkeypatch.setattr(dispatch, "_publish", lambda task, args, countdown, kwargs=None: False)

    assert not dispatch.wake()
    assert not flag_redis.exists(dispatch.flag_key(SINGLES))  # the next submission must try again


def test_without_the_flags_redis_every_submission_publishes(published, monkeypatch):
    unreachable = redis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1)
    monkeypatch.setattr(dispatch, "_flags", lambda: ProcessLocal(lambda: unreachable))

    assert dispatch.wake() and dispatch.wake(IMPORTS)
    assert published == [(dispatch.PLACE_ORDERS, SINGLES, None), (dispatch.PLACE_ORDERS, IMPORTS, None)]


def test_retry_wake_ups_are_whole_seconds_shared_by_jobs_due_together(published):
    assert dispatch.wake_after([0.0, 0.1, 0.25, 0.9, 1.0, 1.2, 3.7], IMPORTS) == 4

    # 0 is at once; RabbitMQ refuses countdowns under a second
    assert published == [(dispatch.PLACE_ORDERS, IMPORTS, countdown) for countdown in (None, 1.0, 2.0, 4.0)]

"""Wake-ups: a submission asks the flag's Redis at most once a grace period under load; retry
wake-ups come one per whole second, never a countdown the broker would refuse."""
from types import SimpleNamespace

import pytest

from tasks import dispatch


class Flag:
    """The wake-up flag's Redis (SET NX and DELETE on one key, each call counted), the clock, and
    the wake-ups published."""

    def __init__(self):
        self.up, self.calls = False, 0
        self.clock = {"now": 100.0}
        self.published = []

    def set(self, _key, _value, nx=False, px=None):  # noqa: ARG002 - redis-py's signature
        self.calls += 1
        if nx and self.up:
            return None
        self.up = True
        return True

    def delete(self, _key):
        self.calls += 1
        self.up = False


@pytest.fixture()
def flag(monkeypatch):
    """A fresh flag, no sighting of it yet, a clock the test moves, and the wake-ups published."""
    flag = Flag()
    monkeypatch.setattr(dispatch, "_flags", lambda: SimpleNamespace(get=lambda: flag))
    monkeypatch.setattr(dispatch, "_sighting", dispatch._Sighting())
    monkeypatch.setattr(dispatch.time, "monotonic", lambda: flag.clock["now"])
    monkeypatch.setattr(dispatch, "_publish", lambda task, args, countdown: flag.published.append(task) or True)
    return flag


def test_submissions_within_the_grace_of_a_sighting_skip_the_round_trip(flag):
    assert dispatch.wake()  # raises the flag and publishes
    flag.clock["now"] += dispatch.FLAG_GRACE_SECONDS / 2
    assert dispatch.wake()
    assert (flag.calls, flag.published) == (1, [dispatch.PLACE_ORDERS])

    flag.clock["now"] += dispatch.FLAG_GRACE_SECONDS * 2  # the sighting is stale: ask again
    assert dispatch.wake()
    assert (flag.calls, flag.published) == (2, [dispatch.PLACE_ORDERS])  # still up: nothing more to publish

    dispatch.idle()  # the execution took it down (and waits the grace before its last claim)
    flag.clock["now"] += dispatch.FLAG_GRACE_SECONDS * 2
    assert dispatch.wake()
    assert flag.published == [dispatch.PLACE_ORDERS] * 2


def test_a_wake_up_that_could_not_be_published_is_no_sighting(flag, monkeypatch):
    monkeypatch.setattr(dispatch, "_publish", lambda task, args, countdown: False)
    assert not dispatch.wake()
    assert not flag.up  # taken down again: the next submission must try

    assert not dispatch.wake()  # at once, within the grace: asks again instead of trusting it
    assert flag.calls == 4


def test_retry_wake_ups_are_whole_seconds_shared_by_jobs_due_together(monkeypatch):
    sent = []
    monkeypatch.setattr(dispatch, "_publish", lambda task, args, countdown: sent.append(countdown) or True)

    assert dispatch.wake_after([0.0, 0.1, 0.25, 0.9, 1.0, 1.2, 3.7]) == 4

    assert sent == [None, 1.0, 2.0, 4.0]  # 0 is at once; RabbitMQ refuses countdowns under a second

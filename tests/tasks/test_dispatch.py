"""Retry wake-ups: one per whole second, never a countdown the broker would refuse."""
from tasks import dispatch


def test_retry_wake_ups_are_whole_seconds_shared_by_jobs_due_together(monkeypatch):
    sent = []
    monkeypatch.setattr(dispatch, "_publish", lambda task, args, countdown: sent.append(countdown) or True)

    assert dispatch.wake_after([0.0, 0.1, 0.25, 0.9, 1.0, 1.2, 3.7]) == 4

    assert sent == [None, 1.0, 2.0, 4.0]  # 0 is at once; RabbitMQ refuses countdowns under a second

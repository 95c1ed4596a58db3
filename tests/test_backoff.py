"""Backoff stays within its window, honours Retry-After and never passes the cap."""
from backoff import RetryPolicy


def test_delay_grows_exponentially_with_jitter_inside_the_window():
    policy = RetryPolicy(max_attempts=6, base=1.0, cap=100.0)
    for attempt, window in ((1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0)):
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(window / 2 <= d <= window for d in delays)
        assert len(delays) > 1


def test_retry_after_is_a_floor_and_the_cap_is_a_ceiling():
    policy = RetryPolicy(base=0.1, cap=5.0)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=60.0) == 5.0
    assert policy.delay(30) <= 5.0


def test_a_count_bound_stops_after_that_many_tries():
    policy = RetryPolicy(max_attempts=3)
    assert not policy.exhausted(2, age=10_000)
    assert policy.exhausted(3, age=0)


def test_a_deadline_bound_stops_only_once_the_time_is_spent():
    policy = RetryPolicy(deadline=1800)
    assert not policy.exhausted(500, age=1799)
    assert policy.exhausted(1, age=1800)

"""The rate limit's counts: fixed windows per client, shared by processes through a real Redis."""
import time

from devstack import stack as procs
from web.window_counts import WindowCounts


def _settle():
    time.sleep(0.3)  # several syncs (50 ms each): every process has added its counts and read the total


def test_a_window_allows_its_limit_then_says_how_long_until_the_next(redis_url):
    counts = WindowCounts(redis_url, limit=2, period=60, prefix="test-windows-a")

    assert counts.hit("client", now=600.0) is None
    assert counts.hit("client", now=610.0) is None
    assert counts.hit("client", now=615.0) == 45.0  # the window 600-660 is spent
    assert counts.hit("other", now=615.0) is None  # per client
    assert counts.hit("client", now=660.0) is None  # the next window


def test_processes_learn_each_others_counts_within_a_sync(redis_url):
    first, second = (WindowCounts(redis_url, limit=10, period=3600, prefix="test-windows-b") for _ in range(2))

    assert [first.hit("client") for _ in range(6)] == [None] * 6
    _settle()
    assert second.hit("client") is None  # the second process has not heard of this client yet...
    _settle()  # ...and now knows the total: 7
    assert [second.hit("client") is None for _ in range(4)] == [True, True, True, False]


def test_without_redis_each_process_still_counts_its_own():
    counts = WindowCounts(f"redis://127.0.0.1:{procs.free_port()}/0", limit=3, period=3600, prefix="test-windows-c")

    assert [counts.hit("client") is None for _ in range(4)] == [True, True, True, False]
    _settle()  # the sync fails (logged) and forgets nothing
    assert counts.hit("client") is not None

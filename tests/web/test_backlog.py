"""The backlog count: read in the request that first needs it, then recounted in the background, so
that no later request waits for a count."""
import threading

from web.backlog import Backlog


def test_the_first_count_is_read_at_once_and_a_stale_one_is_recounted_in_the_background(make_app, jobs):
    app = make_app()
    for _ in range(3):
        jobs.park()
    backlog = Backlog(app.extensions["database"], ttl=0.0)
    recounted = threading.Event()
    recount = backlog._recount

    def watched_recount():
        recount()
        recounted.set()

    backlog._recount = watched_recount
    with app.test_request_context("/orders/1", method="POST"):
        assert backlog.count() == 3
        jobs.park()
        stale = backlog.count()  # answers at once with what it knew, and starts a recount
        assert recounted.wait(30)
        fresh = backlog.count()

    assert stale == 3 and fresh == 4

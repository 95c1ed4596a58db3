"""The sweeper's look at the jobs, on the real PostgreSQL: it counts overdue jobs per lane, so that a
lost wake-up of an import's lines wakes the imports lane and a single order's the single orders'."""
from datetime import timedelta

from sqlalchemy import text

from placement.jobs import Line, submit, submit_many
from tasks.sweeper import _OVERDUE_JOBS


def _overdue(connection) -> dict:
    """The sweeper's counts, its scan started an hour back (where the due floor starts is
    tests/models/test_due.py's)."""
    since = connection.execute(text("SELECT now() - interval '1 hour'")).scalar()
    params = {"dispatch_deadline": timedelta(seconds=30), "since": since}
    return dict(connection.execute(_OVERDUE_JOBS, params).one()._mapping)


def test_overdue_jobs_are_counted_in_their_lanes(connection):
    single = submit(connection, 2, None, None).job.id
    submit_many(connection, [Line(customer_id=1) for _ in range(3)])
    submit(connection, 3, None, None)  # due, but not for longer than the dispatch deadline
    connection.commit()
    assert _overdue(connection) == {"singles": 0, "imports": 0}

    connection.execute(text("UPDATE jobs SET next_run_at = now() - interval '1 minute' WHERE import_id IS NOT NULL"
                            " OR id = :single"), {"single": single})

    assert _overdue(connection) == {"singles": 1, "imports": 3}

"""The due floor on the real PostgreSQL: scans of waiting jobs stay flat while a snapshot is held,
and no waiting job is ever left below the floor."""
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, insert, select, text, update

from devstack import stack
from models import due
from models.jobs import CART_NOT_NEEDED, COMPLETED, QUEUED, SINGLES, SOURCE_BODY, Job
from placement import jobs
from tasks.sweeper import repair_floor
from models.db import Database


@pytest.fixture(scope="module")
def engine(database_url):
    stack.migrate(database_url)
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture()
def connection(engine, monkeypatch):
    """A connection to an empty jobs table, and this process's floor as if it had just started."""
    monkeypatch.setattr(due, "floor", due.DueFloor())
    with engine.connect() as connection:
        connection.execute(text("TRUNCATE jobs CASCADE"))
        yield connection
        connection.execute(text("SELECT pg_advisory_unlock_all()"))


def submit(connection, count: int, due_in=timedelta(0)) -> list[uuid.UUID]:
    rows = [{"id": uuid.uuid4(), "customer_id": i, "status": QUEUED, "source": SOURCE_BODY, "attempts": 0,
             "requested_items": [{"product_id": 1, "quantity": 1}], "cart_status": CART_NOT_NEEDED}
            for i in range(count)]
    if not rows:
        return []
    connection.execute(insert(Job).values(next_run_at=text(f"now() + interval '{due_in.total_seconds()} seconds'")),
                       rows)
    return [row["id"] for row in rows]


def claim_buffers(connection, since) -> int:
    """Shared buffers the claim statement reads (EXPLAIN ANALYZE, BUFFERS), its changes rolled back."""
    compiled = jobs.CLAIMS[SINGLES].params(task_id="explain", limit=32, lease=timedelta(seconds=30), since=since).compile(
        dialect=connection.dialect).construct_expanded_state()
    with connection.engine.connect() as explaining:
        explaining = explaining.execution_options(isolation_level="READ COMMITTED")
        plan = explaining.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + compiled.statement,
                                          compiled.parameters).scalar()
        explaining.rollback()
        explaining.execute(text("SELECT pg_advisory_unlock_all()"))
    return plan[0]["Plan"]["Shared Hit Blocks"] + plan[0]["Plan"].get("Shared Read Blocks", 0)


def finish_under_held_snapshot(engine, connection, count: int) -> None:
    """`count` jobs, due an hour ago, claimed and completed while another session holds a snapshot
    taken before: each leaves dead index entries that no VACUUM may remove."""
    submit(connection, count, due_in=timedelta(hours=-1))
    holder = engine.connect()
    holder.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ"))
    holder.execute(text("SELECT count(*) FROM jobs"))
    while claimed := jobs.claim(connection, "churn", 500, -3600.0, SINGLES):
        connection.execute(update(Job).where(Job.id.in_([job.id for job in claimed])).values(status=COMPLETED))
        connection.execute(text("SELECT pg_advisory_unlock_all()"))
    return holder


def test_the_claim_reads_as_much_after_many_jobs_finished_under_a_held_snapshot_as_after_none(engine, connection):
    floor = due.DueFloor(refresh_seconds=0)
    costs = {}
    for finished in (0, 3000):
        connection.execute(text("TRUNCATE jobs CASCADE"))
        holder = finish_under_held_snapshot(engine, connection, finished)
        submit(connection, 1)
        connection.execute(text("VACUUM jobs"))  # removes nothing the snapshot may still see
        costs[finished] = claim_buffers(connection, floor.since(connection)), claim_buffers(connection, due.BEGINNING)
        holder.execute(text("ROLLBACK"))  # the engine is in autocommit: closing would leave BEGIN's transaction open
        holder.close()
    (from_floor_before, from_beginning_before), (from_floor_after, from_beginning_after) = costs[0], costs[3000]
    growth_from_beginning = from_beginning_after - from_beginning_before  # a buffer per few finished jobs
    assert growth_from_beginning > 300
    assert from_floor_after - from_floor_before < growth_from_beginning / 20  # deeper indexes, nothing more


def test_the_floor_never_passes_a_waiting_job(connection):
    floor = due.floor = due.DueFloor(refresh_seconds=0)
    later = submit(connection, 1, due_in=timedelta(minutes=10))  # retrying, due in ten minutes
    since = floor.since(connection)
    assert connection.scalar(select(Job.next_run_at).where(Job.id == later[0])) > since
    waiting = submit(connection, 3, due_in=timedelta(minutes=-30))
    connection.execute(update(Job).where(Job.id.in_(waiting[:2])).values(status=COMPLETED))
    floor._floor = due.BEGINNING + due.SLACK  # as a process that has not read it yet
    since = floor.since(connection)
    oldest_waiting = connection.scalar(select(Job.next_run_at).where(Job.id == waiting[2]))
    assert since <= oldest_waiting
    assert [job.id for job in jobs.claim(connection, "t", 10, 30.0, SINGLES)] == [waiting[2]]


def test_a_job_committed_below_the_floor_is_moved_up_by_the_sweeper_and_claimed(engine, database_url, connection):
    submit(connection, 1)
    due.floor.since(connection)
    due.floor._read_at = float("-inf")  # read it again at the next scan
    late = submit(connection, 1, due_in=-2 * due.SLACK)  # as a submission whose commit took that long
    assert jobs.claim(connection, "t", 10, 30.0, SINGLES) and not jobs.claim(connection, "t2", 10, 30.0, SINGLES)
    database = Database(database_url)
    try:
        repair_floor(database)
    finally:
        database.dispose()
    assert [job.id for job in jobs.claim(connection, "t3", 10, 30.0, SINGLES)] == late

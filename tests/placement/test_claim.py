"""The claim's fairness on the real PostgreSQL: single orders and imports' lines are claimed in lanes of
their own, imports' lines at most a bounded number of batches at once, and a new import's lines
interleave with a running import's instead of waiting behind them."""
import uuid

from sqlalchemy import text

from models.jobs import IMPORTS, SINGLES
from placement.jobs import IMPORT_BATCHES_IN_FLIGHT, Line, claim, submit, submit_many


def _import(connection, lines: int) -> list[uuid.UUID]:
    """An import's job ids, in line order."""
    imported = submit_many(connection, [Line(customer_id=1) for _ in range(lines)])
    connection.commit()
    return [job.job_id for job in imported.jobs]


def _claimed(connection, limit: int, lane: str = IMPORTS, lease: float = 60) -> set[uuid.UUID]:
    return {row.id for row in claim(connection, str(uuid.uuid4()), limit, lease=lease, lane=lane)}


def _placed(connection, job_ids) -> None:
    connection.execute(text("UPDATE jobs SET status = 'completed' WHERE id = ANY(:ids)"), {"ids": list(job_ids)})


def test_each_lane_claims_only_its_own_jobs(connection):
    lines = _import(connection, 6)
    singles = [submit(connection, 2, None, None).job.id for _ in range(3)]  # submitted after the import

    assert _claimed(connection, 4, SINGLES) == set(singles)  # though the import came first
    assert _claimed(connection, 4, IMPORTS) == set(lines[:4])
    assert _claimed(connection, 4, SINGLES) == set()


def test_a_new_import_interleaves_with_a_running_one(connection):
    running = _import(connection, 10)
    _placed(connection, _claimed(connection, 3))

    new = _import(connection, 4)

    first = _claimed(connection, 4)
    _placed(connection, first)
    assert first == {running[3], running[4], new[0], new[1]}
    assert _claimed(connection, 4) == {running[5], running[6], new[2], new[3]}


def test_import_lines_being_placed_are_a_bounded_number_of_batches(connection):
    batch, bound = 4, IMPORT_BATCHES_IN_FLIGHT * 4
    lines = _import(connection, 4 + bound + 8)
    _claimed(connection, batch, lease=0)  # lines 0-3, by an execution that died: they do not count

    claims = [_claimed(connection, batch) for _ in range(IMPORT_BATCHES_IN_FLIGHT + 1)]

    assert set().union(*claims[:-1]) == set(lines[4:4 + bound]) and claims[-1] == set()  # no more
    singles = [submit(connection, 2, None, None).job.id for _ in range(2)]
    assert _claimed(connection, batch, SINGLES) == set(singles)  # single orders still are
    _placed(connection, claims[0])
    assert _claimed(connection, batch) == set(lines[4 + bound:4 + bound + batch])

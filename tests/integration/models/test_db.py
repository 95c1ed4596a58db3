"""Units of work outside an explicit transaction: one statement alone, and autocommit sessions."""
import pytest
from sqlalchemy import column, select, table, text
from sqlalchemy.exc import ProgrammingError

from models.db import Database, execute_alone

SCRATCH = table("db_test_scratch", column("n"))


@pytest.fixture()
def database(stack_env, engine):
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS db_test_scratch (n int)"))
        connection.execute(text("TRUNCATE db_test_scratch"))
    database = Database(stack_env["database_url"], pool_size=2)
    yield database
    database.dispose()
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE db_test_scratch"))


def _count(engine) -> int:
    with engine.connect() as other:
        return other.execute(text("SELECT count(*) FROM db_test_scratch")).scalar_one()


def test_a_statement_run_alone_is_committed_at_once_and_leaves_no_transaction(database, engine):
    with database.engine.connect() as connection:
        inserted = execute_alone(connection, SCRATCH.insert().values(n=1).returning(SCRATCH.c.n)).scalar_one()

        assert inserted == 1
        assert _count(engine) == 1  # seen by another connection while this one is still held
        assert not connection.in_transaction()
        assert execute_alone(connection, select(SCRATCH.c.n)).all() == [(1,)]


def test_a_failed_statement_leaves_the_connection_usable(database, engine):
    with database.engine.connect() as connection:
        with pytest.raises(ProgrammingError):
            execute_alone(connection, text("SELECT * FROM no_such_table"))
        assert not connection.in_transaction()
        execute_alone(connection, SCRATCH.insert().values(n=2))
    assert _count(engine) == 1


def test_an_autocommit_session_sees_each_commit_and_commits_each_write(database, engine):
    with database.autocommit_session() as session:
        assert session.execute(select(SCRATCH.c.n)).all() == []
        with engine.begin() as other:
            other.execute(SCRATCH.insert().values(n=3))
        assert session.execute(select(SCRATCH.c.n)).all() == [(3,)]  # no snapshot held between reads
        session.execute(SCRATCH.insert().values(n=4))
        assert _count(engine) == 2  # written without a commit

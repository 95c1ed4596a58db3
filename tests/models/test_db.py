"""Units of work outside an explicit transaction: an execution's connection, and autocommit sessions;
pooled connections that the server dropped. On a PostgreSQL database of the module's own."""
import pytest
from sqlalchemy import column, create_engine, select, table, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from models import db
from models.db import Database, transaction
from models.locks import LOCK_ALL, TRY_LOCK, UNLOCK_EVERYTHING, product_key

SCRATCH = table("db_test_scratch", column("n"))


@pytest.fixture()
def engine(database_url):
    """Another client of the module's database (tests/conftest.py), to see what a unit of work committed."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def database(database_url, engine):
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS db_test_scratch (n int)"))
        connection.execute(text("TRUNCATE db_test_scratch"))
    database = Database(database_url, pool_size=2)
    yield database
    database.dispose()
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE db_test_scratch"))


def _count(engine) -> int:
    with engine.connect() as other:
        return other.execute(text("SELECT count(*) FROM db_test_scratch")).scalar_one()


def test_an_execution_connection_commits_each_statement_and_groups_a_transaction(database, engine):
    with database.connection() as connection:
        connection.execute(SCRATCH.insert().values(n=1))
        assert _count(engine) == 1  # seen by another connection while this one is still held

        with pytest.raises(ProgrammingError), transaction(connection):
            connection.execute(SCRATCH.insert().values(n=2))
            assert _count(engine) == 1  # not before the transaction commits
            connection.execute(text("SELECT * FROM no_such_table"))
        assert _count(engine) == 1  # the failed transaction left nothing

        with transaction(connection):
            connection.execute(SCRATCH.insert().values(n=3))
            connection.execute(SCRATCH.insert().values(n=4))
        connection.execute(SCRATCH.insert().values(n=5))  # autocommit again after it
        assert _count(engine) == 4


def test_an_execution_connection_gives_its_advisory_locks_back_with_it(database, engine):
    keys = [product_key(1), product_key(2)]
    with database.connection() as connection:
        connection.execute(LOCK_ALL, {"keys": keys})
        with engine.connect() as other:
            assert not other.execute(TRY_LOCK, {"key": keys[0]}).scalar()
    with engine.connect() as other:
        assert other.execute(TRY_LOCK, {"key": keys[0]}).scalar()
        assert other.execute(TRY_LOCK, {"key": keys[1]}).scalar()
        other.execute(UNLOCK_EVERYTHING)


def test_an_autocommit_session_sees_each_commit_and_commits_each_write(database, engine):
    with database.autocommit_session() as session:
        assert session.execute(select(SCRATCH.c.n)).all() == []
        with engine.begin() as other:
            other.execute(SCRATCH.insert().values(n=3))
        assert session.execute(select(SCRATCH.c.n)).all() == [(3,)]  # no snapshot held between reads
        session.execute(SCRATCH.insert().values(n=4))
        assert _count(engine) == 2  # written without a commit


def _backend(connection) -> int:
    return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(engine, pids) -> None:
    with engine.connect() as other:
        for pid in pids:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def test_a_pooled_connection_dropped_while_it_rested_is_replaced_before_use(database, engine, monkeypatch):
    with database.connection() as connection:
        dropped = _backend(connection)
    _terminate(engine, [dropped])
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # as if it had rested a while

    with database.connection() as connection:
        assert _backend(connection) != dropped  # no error: pinged, found dead, replaced


def test_a_connection_used_a_moment_ago_is_not_pinged_and_its_drop_renews_the_whole_pool(database, engine):
    with database.connection() as first, database.connection() as second:
        dropped = {_backend(first), _backend(second)}
    _terminate(engine, dropped)

    with pytest.raises(DBAPIError) as failed, database.connection() as connection:
        _backend(connection)  # rested for less than PING_AFTER_IDLE_SECONDS: used as it is
    assert failed.value.connection_invalidated

    with database.connection() as first, database.connection() as second:
        assert {_backend(first), _backend(second)}.isdisjoint(dropped)  # the other dead one went too


def test_connections_whose_server_went_away_go_back_without_error_and_the_pool_keeps_its_size(database, engine):
    def take_all():  # pool_size 2 + overflow 2
        return [database.autocommit_connection() for _ in range(4)]

    for connection in (held := take_all()):  # once round the pool first: given back once already
        connection.execute(SCRATCH.insert().values(n=1))
        connection.close()
    held = take_all()
    _terminate(engine, [_backend(connection) for connection in held])
    for connection in held:
        connection.close()  # nothing to reset on the way back, so nothing to fail

    with pytest.raises(DBAPIError), database.connection() as connection:
        _backend(connection)  # the first use finds them dead...
    held = take_all()  # ...and every slot works again: none was lost
    try:
        assert [connection.execute(select(SCRATCH.c.n)).all() for connection in held] == [[(1,)] * 4] * 4
    finally:
        for connection in held:
            connection.close()

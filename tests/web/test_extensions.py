"""The request's database session and connection are closed at the end of every request, even when
PostgreSQL dropped them in the meantime: the answer stands and the pool keeps its places."""
from sqlalchemy import text

from web.extensions import db


def _backend(handle) -> int:
    return handle.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_connections_lost_before_the_request_ends_raise_nothing_and_leave_no_hole_in_the_pool(
        make_app, engine, capfd):
    app = make_app(DB_POOL_SIZE="1")  # one place in the pool, one more on overflow
    pool = app.extensions["database"].engine.pool
    with app.test_request_context("/orders/1", method="POST"):
        dropped = [_backend(db.session), _backend(db.connection)]  # a transaction open on the first
        with engine.connect() as other:
            for pid in dropped:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # Leaving the request ran its teardown, which raised nothing.

    assert "database connection lost at the end of a request" in capfd.readouterr().err
    assert pool.checkedout() == 0
    with app.test_request_context("/orders", method="GET"):
        assert _backend(db.session) not in dropped  # the lost transaction's place was freed and refilled

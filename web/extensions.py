"""Extensions, created unbound and initialised by `create_app`."""
from __future__ import annotations

from flask import Flask, current_app, g, request
from flask_smorest import Api
from sqlalchemy.orm import Session

from models.db import Database

api = Api()
READ_ONLY = frozenset({"GET", "HEAD"})


class RequestSessions:
    """One SQLAlchemy session per request: opened on first use, closed at teardown.

    Views commit; nothing else does. A session left uncommitted is rolled back.
    GET and HEAD only read, and a view that declares `single_statement()` writes
    with one statement: theirs runs in autocommit (`Database.autocommit_session`).
    """

    def init_app(self, app: Flask, database: Database) -> None:
        app.extensions["database"] = database
        app.teardown_appcontext(self._close)

    @property
    def database(self) -> Database:
        """The process's Database of the current app."""
        return current_app.extensions["database"]

    @property
    def session(self) -> Session:
        """The current request's session."""
        if "db_session" not in g:
            database = self.database
            autocommit = request.method in READ_ONLY or g.get("db_single_statement", False)
            g.db_session = database.autocommit_session() if autocommit else database.session()
        return g.db_session

    @staticmethod
    def single_statement() -> None:
        """Declare, before its first query, that this request changes the database with one statement
        at most (atomic on its own), so its session can skip the BEGIN and COMMIT round trips."""
        if "db_session" in g:
            raise RuntimeError("single_statement() must come before the request's first query")
        g.db_single_statement = True

    @staticmethod
    def release() -> None:
        """Give the request's connection back to the pool, before the request waits for something
        else; the session takes one again at its next query."""
        session = g.get("db_session")
        if session is not None:
            session.close()

    @staticmethod
    def _close(_exc=None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


db = RequestSessions()

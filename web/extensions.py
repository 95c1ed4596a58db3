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
    GET and HEAD only read: theirs runs in autocommit (`Database.reader`).
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
            g.db_session = database.reader() if request.method in READ_ONLY else database.session()
        return g.db_session

    @staticmethod
    def _close(_exc=None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


db = RequestSessions()

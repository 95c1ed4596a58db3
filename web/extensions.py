"""Extensions, created unbound and initialised by `create_app`."""
from __future__ import annotations

import logging

from flask import Flask, current_app, g, request
from flask_smorest import Api
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from models.db import Database, first_line

api = Api()
log = logging.getLogger(__name__)
READ_ONLY = frozenset({"GET", "HEAD"})


class RequestSessions:
    """One SQLAlchemy session per request: opened on first use, closed at teardown.

    Views commit; nothing else does. A session left uncommitted is rolled back.
    GET and HEAD only read: their session runs in autocommit
    (`Database.autocommit_session`). A view whose write is one statement, atomic on
    its own, takes `connection` instead: a Core connection in autocommit, with no
    session and no BEGIN or COMMIT around the statement.
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
            g.db_session = (database.autocommit_session() if request.method in READ_ONLY
                            else database.session())
        return g.db_session

    @property
    def connection(self) -> Connection:
        """The current request's connection in autocommit: each statement commits on its own."""
        if "db_connection" not in g:
            g.db_connection = self.database.autocommit_connection()
        return g.db_connection

    def scalar(self, statement, params=None):
        """One read on what the request already holds: its connection if it took one, else its session."""
        connection = g.get("db_connection")
        return (connection if connection is not None else self.session).scalar(statement, params)

    @staticmethod
    def commit() -> None:
        """Commit the request's session, if it opened one (its connection's statements already are)."""
        session = g.get("db_session")
        if session is not None:
            session.commit()

    @staticmethod
    def release() -> None:
        """Give the request's connection back to the pool, before the request waits for something
        else; the session takes one again at its next query."""
        session = g.get("db_session")
        if session is not None:
            session.close()

    @staticmethod
    def _close(_exc=None) -> None:
        """Close what the request opened, and never raise: its answer is already made. When the
        server went away meanwhile, ending an open transaction fails; the connection is then
        invalidated (SQLAlchemy drops it and frees its place in the pool) rather than turning that
        answer, perhaps a 202 for a committed job, into a 500."""
        for held in (g.pop("db_session", None), g.pop("db_connection", None)):
            if held is None:
                continue
            try:
                held.close()
            except DBAPIError as exc:
                log.warning("database connection lost at the end of a request: %s", first_line(exc))
                held.invalidate()


db = RequestSessions()

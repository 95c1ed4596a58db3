"""`GET /metrics`: Prometheus exposition of the API, all gunicorn processes summed, plus the queue's
figures read from PostgreSQL at scrape time (the broker is not the truth): one query, so any API
process answers the same, whichever gunicorn process the scrape reaches."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from models import due
from models.db import first_line
from models.jobs import QUEUED, RETRYING, UNFINISHED, Job
from observability import metrics
from web.errors import database_unavailable
from web.extensions import db

log = logging.getLogger(__name__)
blp = Blueprint("metrics", __name__)

# Per unfinished status: how many jobs, how many seconds the oldest has existed, and how many are
# due (for queued and retrying ones: waiting for a worker to claim them). One pass over the
# unfinished jobs (the partial index ix_jobs_unfinished_next_run_at), from the due floor.
_BACKLOG = (
    select(Job.status, func.count().label("jobs"),
           func.extract("epoch", func.now() - func.min(Job.created_at)).label("oldest_age"),
           func.count().filter(Job.next_run_at <= func.now()).label("due"))
    .where(due.WAITING_UNFINISHED, Job.next_run_at >= due.SINCE)
    .group_by(Job.status)
)
_WAITING = (QUEUED, RETRYING)


class QueueFigures:
    """The backlog by status, the oldest unfinished job's age, the jobs due but unclaimed, and whether
    the database answered (`orders_database_up`: during an outage the scrape still succeeds, so the
    process counters stay visible and an alert can fire on the 0)."""

    def __init__(self, database):
        self.database = database

    def collect(self):
        up = GaugeMetricFamily("orders_database_up", "1 when PostgreSQL answered this scrape's query, else 0")
        try:
            with self.database.transaction() as session:
                rows = {row.status: row for row in session.execute(_BACKLOG, {"since": due.floor.since(session)})}
        except DBAPIError as exc:
            if not database_unavailable(exc):
                raise
            log.warning("metrics: database unavailable: %s", first_line(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        backlog = GaugeMetricFamily("orders_jobs_unfinished", "Jobs not yet in a final status", labels=["status"])
        for status in UNFINISHED:
            backlog.add_metric([status], rows[status].jobs if status in rows else 0)
        yield backlog
        yield GaugeMetricFamily("orders_jobs_oldest_unfinished_age_seconds",
                                "Seconds since the oldest unfinished job was submitted (0: none)",
                                value=max((float(row.oldest_age) for row in rows.values()), default=0.0))
        yield GaugeMetricFamily("orders_jobs_due_unclaimed",
                                "Queued or retrying jobs whose time to run has come, not yet claimed by a worker",
                                value=sum(rows[status].due for status in _WAITING if status in rows))


@blp.route("/metrics")
def scrape():
    """Counters and histograms of every API process, and the queue's figures."""
    return Response(metrics.render(current_app.extensions["settings"].metrics_dir, QueueFigures(db.database)),
                    mimetype=CONTENT_TYPE_LATEST)

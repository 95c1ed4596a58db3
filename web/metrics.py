"""`GET /metrics`: Prometheus exposition of the API, all gunicorn processes summed, plus queue depth."""
from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from models import due
from models.jobs import UNFINISHED, Job
from observability import metrics
from web.extensions import db

blp = Blueprint("metrics", __name__)


# Unfinished jobs by status, scanned from the due floor.
_BY_STATUS = (select(Job.status, func.count()).where(due.WAITING_UNFINISHED, Job.next_run_at >= due.SINCE)
              .group_by(Job.status))


class QueueDepth:
    """Unfinished jobs by status, read from PostgreSQL at scrape time (the broker is not the truth)."""

    def __init__(self, database):
        self.database = database

    def collect(self):
        gauge = GaugeMetricFamily("orders_jobs_unfinished", "Jobs not yet in a final status", labels=["status"])
        with self.database.transaction() as session:
            counts = dict(session.execute(_BY_STATUS, {"since": due.floor.since(session)}).all())
        for status in UNFINISHED:
            gauge.add_metric([status], counts.get(status, 0))
        yield gauge


@blp.route("/metrics")
def scrape():
    """Counters and histograms of every API process, and the queue depth."""
    return Response(metrics.render(current_app.extensions["settings"].metrics_dir, QueueDepth(db.database)),
                    mimetype=CONTENT_TYPE_LATEST)

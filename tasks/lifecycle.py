"""Worker start-up and shutdown: logging, tracing, schema, metrics endpoint, the sweeper and
retention, peer sessions."""
from __future__ import annotations

import logging

from celery import signals
from prometheus_client import start_http_server

import migrations
from observability import logs, metrics, tracing
from tasks import app_settings

log = logging.getLogger(__name__)
_chores = []


@signals.setup_logging.connect
def _logging(**_):
    """Our format (text or JSON, with job ids) instead of Celery's."""
    settings = app_settings()
    logs.configure(settings.log_level, settings.log_format)


@signals.worker_init.connect
def _prepare(**_):
    """Fail fast on bad configuration and bring the schema up to date before taking work."""
    from tasks.runtime import get_runtime

    settings = app_settings()
    tracing.setup(settings, "orders-worker")  # before the engine and the peer pools are made
    runtime = get_runtime()
    runtime.db.require_reachable()
    if settings.auto_migrate:
        migrations.upgrade(runtime.db.engine)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_addr,
                          registry=metrics.registry_for_scrape(settings.metrics_dir))
        log.info("worker metrics on :%s/metrics", settings.worker_metrics_port)


@signals.worker_ready.connect
def _start_chores(**_):
    """The sweeper (and its repair of the due floor), and retention unless RETENTION_DAYS=0: threads of the worker's main process, each
    under an advisory lock, so they need no process of their own (no Celery beat) in any deployment."""
    from tasks.periodic import Every
    from tasks.retention import prune
    from tasks.runtime import get_runtime
    from tasks.sweeper import REPAIR_EVERY, repair_floor, sweep

    settings, db = app_settings(), get_runtime().db
    _chores.append(Every("job-sweeper", settings.sweep_interval, lambda: sweep(db, settings.dispatch_deadline)))
    _chores.append(Every("due-floor-repair", settings.sweep_interval * REPAIR_EVERY, lambda: repair_floor(db)))
    if settings.retention_days:
        _chores.append(Every("retention", settings.sweep_interval,
                             lambda: prune(db, settings.retention_days, settings.retention_batch_size)))
    for chore in _chores:
        chore.start()


@signals.worker_shutdown.connect
def _stop_chores(**_):
    for chore in _chores:
        chore.stop()


@signals.worker_shutdown.connect
@signals.worker_process_shutdown.connect
def _close_peer_sessions(**_):
    """Close the peer clients' sessions this process opened (an unclosed one is reported at exit)."""
    from tasks.runtime import get_runtime

    get_runtime().close_peers()

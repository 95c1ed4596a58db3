"""Worker start-up and shutdown: logging, tracing, schema, metrics endpoint, the sweeper and
retention, peer sessions."""
from __future__ import annotations

import logging
import os

from celery import signals
from prometheus_client import start_http_server

import migrations
from observability import logs, metrics, tracing
from settings import get_settings

log = logging.getLogger(__name__)
_chores = []


@signals.setup_logging.connect
def _logging(**_):
    """Our format (text or JSON, with job ids) instead of Celery's."""
    logs.configure(get_settings().log_level)


@signals.worker_init.connect
def _prepare(**_):
    """Fail fast on bad configuration and bring the schema up to date before taking work."""
    from tasks.runtime import get_runtime

    tracing.setup(get_settings(), "orders-worker")  # before the engine and the peer pools are made
    runtime = get_runtime()
    runtime.db.require_reachable()
    if runtime.settings.auto_migrate:
        migrations.upgrade(runtime.db.engine)
    port = int(os.environ.get("WORKER_METRICS_PORT", "0") or 0)
    if port:
        start_http_server(port, addr=os.environ.get("WORKER_METRICS_ADDR", "127.0.0.1"),
                          registry=metrics.registry_for_scrape())
        log.info("worker metrics on :%s/metrics", port)


@signals.worker_ready.connect
def _start_chores(**_):
    """The sweeper, and retention unless RETENTION_DAYS=0: threads of the worker's main process, each
    under an advisory lock, so they need no process of their own (no Celery beat) in any deployment."""
    from tasks.periodic import Every
    from tasks.retention import prune
    from tasks.runtime import get_runtime
    from tasks.sweeper import sweep

    settings, db = get_settings(), get_runtime().db
    _chores.append(Every("job-sweeper", settings.sweep_interval, lambda: sweep(db, settings.dispatch_deadline)))
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

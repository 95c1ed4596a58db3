"""Worker start-up and shutdown: migrate the schema, run the sweeper."""
from __future__ import annotations

import logging

from celery import signals

import migrations
from settings import get_settings

log = logging.getLogger(__name__)
_sweeper = None


@signals.worker_init.connect
def _prepare(**_):
    """Fail fast on bad configuration and bring the schema up to date before taking work."""
    from tasks.runtime import get_runtime

    runtime = get_runtime()
    if runtime.settings.auto_migrate:
        migrations.upgrade(runtime.db.engine)


@signals.worker_ready.connect
def _start_sweeper(**_):
    global _sweeper
    from tasks.runtime import get_runtime
    from tasks.sweeper import SweeperThread

    settings = get_settings()
    _sweeper = SweeperThread(get_runtime().db, settings.sweep_interval, settings.dispatch_deadline)
    _sweeper.start()


@signals.worker_shutdown.connect
def _stop_sweeper(**_):
    if _sweeper is not None:
        _sweeper.stop()

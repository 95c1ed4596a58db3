"""gunicorn settings for the API, from the service's `Settings` (see README 'Configuration')."""
import os
import shutil
import tempfile

from settings import get_settings

# Prometheus multiprocess mode: every gunicorn process writes its metrics under one directory, which
# /metrics sums. prometheus_client reads the variable itself, so a default goes into the environment
# before the settings are read and anything imports prometheus_client.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"orders-metrics-{os.getpid()}"))
# The process's settings, read once: a wrong value stops gunicorn here with one line naming it, and
# `web:create_app()` gets the same object.
_settings = get_settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.web_workers
threads = _settings.web_threads
worker_class = "gthread"
# The app is built once, in the master, before the workers fork: it is checked once (on_starting),
# and migrations run once. Pools are made after the fork (models.db, web.limits).
preload_app = True
timeout = 30
graceful_timeout = 20
keepalive = 5
# Request lines up to 8 KB (gunicorn's largest bounded setting) reach the app, which answers any
# bad URL with a JSON error; only a longer one gets gunicorn's own (HTML) 414.
limit_request_line = 8190
# Each request is logged by the app itself (with its request id); set ACCESS_LOG=true for gunicorn's too.
accesslog = "-" if _settings.access_log else None

os.makedirs(_settings.metrics_dir, exist_ok=True)  # the preloaded app's metrics need it at once


def on_starting(server):
    """Before serving: an empty metrics directory, and the database checked and migrated (web.ready)."""
    from web import ready

    shutil.rmtree(_settings.metrics_dir, ignore_errors=True)
    os.makedirs(_settings.metrics_dir, exist_ok=True)
    app = server.app.wsgi()
    if "database" in app.extensions:  # the benchmarks' bare apps have none
        ready(app)
        # The master serves no request, so it keeps no connection open.
        app.extensions["database"].dispose()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _settings.metrics_dir)

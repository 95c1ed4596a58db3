"""gunicorn settings for the API, all from the environment (see README 'Configuration')."""
import os
import shutil
import tempfile

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - containers listen on all interfaces
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
# The app is built once, in the master, before the workers fork: a wrong setting stops gunicorn at
# once with one line (settings.ConfigError) instead of every worker failing to boot with a traceback,
# and migrations run once. Pools are made after the fork (models.db, web.limits).
preload_app = True
timeout = 30
graceful_timeout = 20
keepalive = 5
# Request lines up to 8 KB (gunicorn's largest bounded setting) reach the app, which answers any
# bad URL with a JSON error; only a longer one gets gunicorn's own (HTML) 414.
limit_request_line = 8190
# Each request is logged by the app itself (with its request id); set ACCESS_LOG=true for gunicorn's too.
accesslog = "-" if os.environ.get("ACCESS_LOG", "false").lower() in {"1", "true", "yes"} else None

# Prometheus multiprocess mode: every gunicorn process writes its metrics under one
# directory, which /metrics sums. The directory is emptied when the master starts.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"orders-metrics-{os.getpid()}"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)  # the preloaded app's metrics need it at once


def on_starting(server):
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    # The master built the app (preload_app) and used the database to check it and migrate; it
    # serves no request, so it keeps no connection open.
    database = server.app.wsgi().extensions.get("database")  # the benchmarks' bare apps have none
    if database is not None:
        database.dispose()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

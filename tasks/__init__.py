"""The Celery application: `celery -A tasks worker`, `celery -A tasks flower`.

Configured from a `Settings`, like every part of the service: a process that
publishes with settings of its own passes them (`init_app`, from the API's
create_app); a process the `celery` command starts (worker, Flower, inspect)
reads its settings once, when Celery first needs its configuration. The
wake-up flag (tasks.dispatch) and the worker's start-up (tasks.lifecycle) use
the same object (`app_settings`). Task modules are listed in celeryconfig.
"""
from __future__ import annotations

from celery import Celery

import celeryconfig
from settings import Settings, get_settings

app = Celery("orders")
_settings: Settings | None = None  # what the app is configured with, once it is


def init_app(settings: Settings) -> Celery:
    """Configure the app from `settings` (read by Celery when it first needs them)."""
    global _settings
    if app.configured and _settings is not None and settings.broker_url != _settings.broker_url:
        # Celery keeps its connection pools to the broker it was first configured with.
        raise RuntimeError("this process's Celery app is already configured for another broker")
    app.config_from_object(celeryconfig.from_settings(settings))
    _settings = settings
    return app


def app_settings() -> Settings:
    """The settings the app is configured with: those given to `init_app`, else the process's own."""
    if _settings is None:
        init_app(get_settings())
    return _settings


@app.on_configure.connect
def _configure(**_) -> None:
    """Celery is about to read its configuration: the process's settings, unless `init_app` gave some."""
    app_settings()


import tasks.lifecycle  # noqa: E402,F401 - worker start-up and shutdown hooks

__all__ = ["app", "app_settings", "init_app"]

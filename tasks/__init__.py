"""The Celery application: `celery -A tasks worker`, `celery -A tasks flower`.

Task modules are listed explicitly in celeryconfig.include.
"""
from celery import Celery

app = Celery("orders")
app.config_from_object("celeryconfig")

import tasks.lifecycle  # noqa: E402,F401 - worker start-up and shutdown hooks

__all__ = ["app"]

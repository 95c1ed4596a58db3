"""Flower's settings (Flower reads ./flowerconfig.py), from the service's `Settings`: never open,
always behind basic auth.

FLOWER_BASIC_AUTH=user:password (comma-separate several) is required; Flower
refuses to start without it rather than show orders to anyone.
"""
from tasks import app_settings

_settings = app_settings()  # the settings the Celery app Flower watches is configured with

basic_auth = _settings.require_flower_auth()
# Keep the last FLOWER_MAX_TASKS (10,000) tasks on the dashboard; older ones drop off.
max_tasks = _settings.flower_max_tasks
persistent = False

"""Flower's settings (Flower reads ./flowerconfig.py): never open, always behind basic auth.

FLOWER_BASIC_AUTH=user:password (comma-separate several) is required; Flower
refuses to start without it rather than show orders to anyone.
"""
import os

_credentials = os.environ.get("FLOWER_BASIC_AUTH", "").strip()
if not _credentials or ":" not in _credentials:
    raise SystemExit("FLOWER_BASIC_AUTH=user:password must be set; Flower is never served without auth")

basic_auth = [pair.strip() for pair in _credentials.split(",") if pair.strip()]
# Keep the last 10,000 tasks on the dashboard; older ones drop off.
max_tasks = int(os.environ.get("FLOWER_MAX_TASKS", "10000"))
persistent = False

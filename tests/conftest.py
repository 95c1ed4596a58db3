"""Fixtures shared by every test layer."""
import os

# Unit tests build Settings from explicit dicts; these only satisfy imports that read the environment.
os.environ.setdefault("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")

"""Bearer tokens for the stacks the tests, benchmarks and chaos run start (never for production)."""
from __future__ import annotations

from devstack.stack import TEST_JWT_SECRET
from settings import Settings
from web.auth import mint

__all__ = ["TEST_JWT_SECRET", "token"]


def token(subject="ops", admin: bool = True, **kwargs) -> str:
    """A token the local stacks accept: an admin's by default, a customer's with admin=False."""
    settings = Settings.from_env({"DATABASE_URL": "postgresql://unused/unused", "CELERY_BROKER_URL": "redis://unused",
                                  "JWT_SECRET": TEST_JWT_SECRET})
    return mint(settings, str(subject), admin, **kwargs)

"""Schema migrations, and the one guarded way to apply them.

Every process may call `upgrade` at start-up (as the seed created its tables):
a PostgreSQL advisory lock makes concurrent starts wait for each other, so the
schema is migrated exactly once.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from models.db import TRANSACTION
from models.locks import MIGRATION_LOCK_KEY

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config() -> Config:
    """Alembic's configuration, pointing at this folder whatever the working directory.

    Alembic is imported here, not with this module: every API and worker process imports this
    module, and one started with AUTO_MIGRATE=false (the local stacks', whose database devstack
    migrates once) would pay about 0.1-0.2 s of CPU for an import it never uses."""
    from alembic.config import Config

    config = Config(str(HERE.parent / "alembic.ini"))
    config.set_main_option("script_location", str(HERE))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`, serialised across processes by an advisory lock."""
    from alembic import command

    config = alembic_config()
    with engine.connect().execution_options(isolation_level=TRANSACTION) as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()

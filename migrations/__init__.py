"""Schema migrations, and the one guarded way to apply them.

Every process may call `upgrade` at start-up (as the seed created its tables):
a PostgreSQL advisory lock makes concurrent starts wait for each other, so the
schema is migrated exactly once.
"""
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from models.db import TRANSACTION
from models.locks import MIGRATION_LOCK_KEY

HERE = Path(__file__).resolve().parent


def alembic_config() -> Config:
    """Alembic's configuration, pointing at this folder whatever the working directory."""
    config = Config(str(HERE.parent / "alembic.ini"))
    config.set_main_option("script_location", str(HERE))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`, serialised across processes by an advisory lock."""
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

"""Alembic environment: migrate the connection handed in, or DATABASE_URL."""
from alembic import context
from sqlalchemy import create_engine

import models

target_metadata = models.Base.metadata


def run(connection):
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def main():
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    from settings import get_settings

    engine = create_engine(get_settings().database_url)
    with engine.connect() as connection:
        run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
main()

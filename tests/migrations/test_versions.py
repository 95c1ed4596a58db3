"""Migrations that move data: what they make of rows written before them, both ways. On a database of the
module's own."""
import json
import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, text

import migrations
from models.db import TRANSACTION
from models.events import timeline

BEFORE_ACCEPTED_FROM_JOB_ROWS = "5d2f8a91c3e4"


@pytest.fixture()
def engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def _downgrade(engine, revision: str) -> None:
    config = migrations.alembic_config()
    with engine.connect().execution_options(isolation_level=TRANSACTION) as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        connection.commit()


def _events(engine, job_id) -> list[tuple]:
    with engine.connect() as connection:
        return [(row.event, row.detail) for row in timeline(connection, [job_id])]


def test_accepted_events_become_the_job_rows_and_come_back_on_downgrade(engine):
    migrations.upgrade(engine, BEFORE_ACCEPTED_FROM_JOB_ROWS)
    job_id = uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO jobs (id, customer_id, status, source, attempts, cart_status)"
            " VALUES (:id, 7, 'processing', 'cart', 1, 'not_needed')"), {"id": job_id})
        connection.execute(text(
            "INSERT INTO job_events (job_id, event, status, attempt, detail) VALUES"
            " (:id, 'accepted', 'queued', 0, CAST(:accepted AS jsonb)), (:id, 'attempt_started', 'processing', 1, NULL)"),
            {"id": job_id, "accepted": json.dumps({"source": "cart"})})

    migrations.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT event FROM job_events WHERE job_id = :id"), {"id": job_id}).scalars()
        assert rows.all() == ["attempt_started"]
    assert _events(engine, job_id) == [("accepted", {"source": "cart"}), ("attempt_started", None)]

    _downgrade(engine, BEFORE_ACCEPTED_FROM_JOB_ROWS)
    with engine.connect() as connection:
        accepted = connection.execute(text(
            "SELECT status, attempt, detail FROM job_events WHERE job_id = :id AND event = 'accepted'"),
            {"id": job_id}).all()
    assert [tuple(row) for row in accepted] == [("queued", 0, {"source": "cart"})]


HOT_TABLES = "SELECT relname, reloptions FROM pg_class WHERE relname IN ('jobs', 'stock_writes', 'inventory_moves')"
BEFORE_STORAGE_PARAMETERS = "c4f1a9e2b7d3"


def test_the_hot_tables_storage_parameters_are_set_and_reset(engine):
    migrations.upgrade(engine)
    with engine.connect() as connection:
        options = {name: set(values or ()) for name, values in connection.execute(text(HOT_TABLES))}
    autovacuum = {"autovacuum_vacuum_scale_factor=0.02", "autovacuum_vacuum_insert_scale_factor=0.02",
                  "autovacuum_analyze_scale_factor=0.02"}
    assert options == {"jobs": {"fillfactor=80", *autovacuum}, "stock_writes": autovacuum,
                       "inventory_moves": autovacuum}

    _downgrade(engine, BEFORE_STORAGE_PARAMETERS)
    with engine.connect() as connection:
        assert {name: values for name, values in connection.execute(text(HOT_TABLES))} == {
            "jobs": None, "stock_writes": None, "inventory_moves": None}

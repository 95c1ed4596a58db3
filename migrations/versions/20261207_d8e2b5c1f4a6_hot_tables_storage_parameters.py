"""hot tables' storage parameters: room on each page for HOT updates, autovacuum sized for a queue

`jobs`, `stock_writes` and `inventory_moves` take an insert and several updates for every order,
and retention deletes them in bulk. PostgreSQL's defaults suit a table that changes by a fraction
of its size: pages filled to 100 % (an update that finds no room on its page cannot be HOT and
writes to every index) and a vacuum after 20 % of the table is dead (hours of dead rows on a big
queue). Here: vacuum and analyze after 2 % of each table changed, and `jobs` keeps 20 % of each
page free, so that its updates that change no indexed column (items resolved, steps) stay HOT; its
other updates (status, next_run_at, task_id, cart_status: columns of its indexes or of their
predicates) never can be. The figures with and without: bench/upkeep.py storage.

Revision ID: d8e2b5c1f4a6
Revises: c4f1a9e2b7d3
Create Date: 2026-12-07 15:00:00.000000
"""
from alembic import op

revision = 'd8e2b5c1f4a6'
down_revision = 'c4f1a9e2b7d3'
branch_labels = None
depends_on = None

QUEUE_AUTOVACUUM = {
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_vacuum_insert_scale_factor": "0.02",
    "autovacuum_analyze_scale_factor": "0.02",
}
PARAMETERS = {
    "jobs": {"fillfactor": "80", **QUEUE_AUTOVACUUM},
    # No fillfactor: every update of a write changes its `state`, a column of ix_stock_writes_pending's
    # predicate, so none can be HOT however much room its page has (measured: 0 HOT updates either way).
    "stock_writes": QUEUE_AUTOVACUUM,
    # No fillfactor: a move is updated while its row is young, on the table's last page, which still
    # has room (measured: as many HOT updates without one, and a smaller table).
    "inventory_moves": QUEUE_AUTOVACUUM,
}


def upgrade():
    for table, parameters in PARAMETERS.items():
        op.execute(f"ALTER TABLE {table} SET ({', '.join(f'{name} = {value}' for name, value in parameters.items())})")


def downgrade():
    for table, parameters in PARAMETERS.items():
        op.execute(f"ALTER TABLE {table} RESET ({', '.join(parameters)})")

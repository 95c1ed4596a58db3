"""retention: orders outlive their jobs, replays outlive the jobs they replay, the oldest rows found by age

Retention (tasks.retention) deletes finished jobs and their ledger rows once they are older than
RETENTION_DAYS. Orders stay: `orders.job_id` is no longer a foreign key (the id is kept, so the API
can tell a pruned job from one never issued). A replay may outlive the failed job it replays:
`jobs.replay_of` is set to NULL when that job goes. Retention finds the oldest jobs and stock writes
by `created_at`, a column never updated, so indexing it keeps their updates HOT.

Revision ID: c4f1a9e2b7d3
Revises: 7a3d5c2e9f10
Create Date: 2026-12-07 14:10:00.000000
"""
from alembic import op

revision = 'c4f1a9e2b7d3'
down_revision = '7a3d5c2e9f10'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_constraint('fk_orders_job_id_jobs', 'orders', type_='foreignkey')
    op.drop_constraint('fk_jobs_replay_of_jobs', 'jobs', type_='foreignkey')
    op.create_foreign_key('fk_jobs_replay_of_jobs', 'jobs', 'jobs', ['replay_of'], ['id'], ondelete='SET NULL')
    op.create_index('ix_jobs_created_at', 'jobs', ['created_at'])
    op.create_index('ix_stock_writes_created_at', 'stock_writes', ['created_at'])


def downgrade():
    op.drop_index('ix_stock_writes_created_at', table_name='stock_writes')
    op.drop_index('ix_jobs_created_at', table_name='jobs')
    op.drop_constraint('fk_jobs_replay_of_jobs', 'jobs', type_='foreignkey')
    op.create_foreign_key('fk_jobs_replay_of_jobs', 'jobs', 'jobs', ['replay_of'], ['id'])
    # Orders whose job was pruned cannot point at it again: their job_id is forgotten first.
    op.execute("UPDATE orders SET job_id = NULL WHERE job_id IS NOT NULL"
               " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = orders.job_id)")
    op.create_foreign_key('fk_orders_job_id_jobs', 'orders', 'jobs', ['job_id'], ['id'])

"""imports: many orders in one request, each line a job; the claim's two scans

An `imports` row names the request; each line is an ordinary job with `import_id` and `import_line`.
Two partial indexes on `next_run_at` let the claim take due single orders and due import lines in
two scans (placement.jobs.CLAIM interleaves them).

Revision ID: c0ffee24b001
Revises: c5a1e2b7d404
Create Date: 2026-12-07 14:10:00
"""
from alembic import op
import sqlalchemy as sa

revision = 'c0ffee24b001'
down_revision = 'c5a1e2b7d404'
branch_labels = None
depends_on = None

UNFINISHED = "status IN ('queued', 'processing', 'retrying')"


def upgrade():
    op.create_table('imports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imports'))
    )
    op.create_index(op.f('ix_imports_customer_id'), 'imports', ['customer_id'], unique=False)
    op.add_column('jobs', sa.Column('import_id', sa.Uuid(), nullable=True))
    op.add_column('jobs', sa.Column('import_line', sa.Integer(), nullable=True))
    op.create_foreign_key(op.f('fk_jobs_import_id_imports'), 'jobs', 'imports', ['import_id'], ['id'])
    op.create_index('ix_jobs_import_line', 'jobs', ['import_id', 'import_line'], unique=True,
                    postgresql_where=sa.text('import_id IS NOT NULL'))
    op.create_index('ix_jobs_unfinished_single_next_run_at', 'jobs', ['next_run_at'], unique=False,
                    postgresql_where=sa.text(f'{UNFINISHED} AND import_id IS NULL'))
    op.create_index('ix_jobs_unfinished_imported_next_run_at', 'jobs', ['next_run_at'], unique=False,
                    postgresql_where=sa.text(f'{UNFINISHED} AND import_id IS NOT NULL'))


def downgrade():
    op.drop_index('ix_jobs_unfinished_imported_next_run_at', table_name='jobs')
    op.drop_index('ix_jobs_unfinished_single_next_run_at', table_name='jobs')
    op.drop_index('ix_jobs_import_line', table_name='jobs')
    op.drop_constraint(op.f('fk_jobs_import_id_imports'), 'jobs', type_='foreignkey')
    op.drop_column('jobs', 'import_line')
    op.drop_column('jobs', 'import_id')
    op.drop_index(op.f('ix_imports_customer_id'), table_name='imports')
    op.drop_table('imports')

"""cancellation, replay and the job timeline

Revision ID: e55257ad5796
Revises: e1f6222ba044
Create Date: 2026-11-25 14:52:10.345873
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'e55257ad5796'
down_revision = 'e1f6222ba044'
branch_labels = None
depends_on = None

STATUS_IN = "status IN ({})"
OLD_STATUSES = "'queued', 'processing', 'retrying', 'completed', 'rejected', 'failed'"
NEW_STATUSES = OLD_STATUSES + ", 'cancelled'"


def upgrade():
    op.create_table('job_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_events_job_id_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_events'))
    )
    op.create_index(op.f('ix_job_events_job_id'), 'job_events', ['job_id'], unique=False)
    op.add_column('jobs', sa.Column('kind', sa.String(length=8), server_default='place', nullable=False))
    op.add_column('jobs', sa.Column('cancels_order_id', sa.Integer(), nullable=True))
    op.add_column('jobs', sa.Column('replay_of', sa.Uuid(), nullable=True))
    op.create_index(op.f('ix_jobs_replay_of'), 'jobs', ['replay_of'], unique=False)
    op.create_unique_constraint(op.f('uq_jobs_cancels_order_id'), 'jobs', ['cancels_order_id'])
    op.create_foreign_key(op.f('fk_jobs_replay_of_jobs'), 'jobs', 'jobs', ['replay_of'], ['id'])
    op.create_foreign_key(op.f('fk_jobs_cancels_order_id_orders'), 'jobs', 'orders', ['cancels_order_id'], ['id'])
    op.drop_constraint(op.f('ck_jobs_status_known'), 'jobs', type_='check')
    op.create_check_constraint(op.f('ck_jobs_status_known'), 'jobs', STATUS_IN.format(NEW_STATUSES))


def downgrade():
    op.drop_constraint(op.f('ck_jobs_status_known'), 'jobs', type_='check')
    op.create_check_constraint(op.f('ck_jobs_status_known'), 'jobs', STATUS_IN.format(OLD_STATUSES))
    op.drop_constraint(op.f('fk_jobs_cancels_order_id_orders'), 'jobs', type_='foreignkey')
    op.drop_constraint(op.f('fk_jobs_replay_of_jobs'), 'jobs', type_='foreignkey')
    op.drop_constraint(op.f('uq_jobs_cancels_order_id'), 'jobs', type_='unique')
    op.drop_index(op.f('ix_jobs_replay_of'), table_name='jobs')
    op.drop_column('jobs', 'replay_of')
    op.drop_column('jobs', 'cancels_order_id')
    op.drop_column('jobs', 'kind')
    op.drop_index(op.f('ix_job_events_job_id'), table_name='job_events')
    op.drop_table('job_events')

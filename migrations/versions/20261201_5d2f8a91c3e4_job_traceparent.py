"""the submission's traceparent on its job

With tracing on, the API stores the W3C traceparent of the request that submitted a job; the
execution that places the job (in a batch, woken by a message that belongs to no submission) links
its span to it, and GET /jobs/{id} shows its trace id. Nullable: tracing is off by default.

Revision ID: 5d2f8a91c3e4
Revises: 3c5e1a7d9b20
Create Date: 2026-12-01 16:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '5d2f8a91c3e4'
down_revision = '3c5e1a7d9b20'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('jobs', sa.Column('traceparent', sa.String(length=55), nullable=True))


def downgrade():
    op.drop_column('jobs', 'traceparent')

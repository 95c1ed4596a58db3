"""the ledger keeps the ETag the catalog answered each applied write with

A batch reads its products before it locks them; a product another holder wrote meanwhile can
then be known from that holder's write (its quantity and this ETag) instead of being read again
under the lock (placement/inventory.py). Null for a write applied by read-back or without ETags.

Revision ID: e3a7c9d1b2f5
Revises: c0ffee24b001
Create Date: 2026-12-07 19:30:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'e3a7c9d1b2f5'
down_revision = 'c0ffee24b001'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('stock_writes', sa.Column('etag_after', sa.String(length=128), nullable=True))


def downgrade():
    op.drop_column('stock_writes', 'etag_after')

"""the ledger holds any quantity the catalog may report; each product's latest write found by index

`stock_writes.quantity_before/after` and `inventory_moves.quantity` were 32-bit: a catalog product
with 3,000,000,000 units (a valid quantity) could not be ledgered. They become bigint.

The partial index on pending writes is replaced by one on (product_id, id): the settle step reads
each product's latest write, which a held snapshot cannot make slow (a partial index keeps one
dead entry per write ever made to the product until vacuum may remove it).

Revision ID: c5a1e2b7d404
Revises: d8e2b5c1f4a6
Create Date: 2026-12-07 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'c5a1e2b7d404'
down_revision = 'd8e2b5c1f4a6'
branch_labels = None
depends_on = None


def upgrade():
    for table, column in (('stock_writes', 'quantity_before'), ('stock_writes', 'quantity_after'),
                          ('inventory_moves', 'quantity')):
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)
    op.create_index('ix_stock_writes_product_id_id', 'stock_writes', ['product_id', 'id'], unique=False)
    op.drop_index('ix_stock_writes_pending', table_name='stock_writes', postgresql_where=sa.text("state = 'pending'"))


def downgrade():
    op.create_index('ix_stock_writes_pending', 'stock_writes', ['product_id'], unique=False,
                    postgresql_where=sa.text("state = 'pending'"))
    op.drop_index('ix_stock_writes_product_id_id', table_name='stock_writes')
    for table, column in (('stock_writes', 'quantity_before'), ('stock_writes', 'quantity_after'),
                          ('inventory_moves', 'quantity')):
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)

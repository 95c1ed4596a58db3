"""batched placement: stock writes shared by a batch's jobs, the task that claimed a job

Revision ID: b47c0e11a001
Revises: 8e36b200a5cf
Create Date: 2026-12-01 15:10:00
"""
from alembic import op
import sqlalchemy as sa

revision = 'b47c0e11a001'
down_revision = '8e36b200a5cf'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stock_writes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('quantity_before', sa.Integer(), nullable=False),
    sa.Column('quantity_after', sa.Integer(), nullable=False),
    sa.Column('etag_before', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("state IN ('pending', 'applied', 'void')", name=op.f('ck_stock_writes_state_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_writes'))
    )
    op.create_index('ix_stock_writes_pending', 'stock_writes', ['product_id'], unique=False,
                    postgresql_where=sa.text("state = 'pending'"))
    op.add_column('inventory_moves', sa.Column('write_id', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_inventory_moves_write_id'), 'inventory_moves', ['write_id'], unique=False)
    op.create_foreign_key(op.f('fk_inventory_moves_write_id_stock_writes'), 'inventory_moves', 'stock_writes',
                          ['write_id'], ['id'])
    # A write still pending from the one-job-at-a-time protocol becomes a write of its own.
    op.execute("INSERT INTO stock_writes (id, product_id, state, quantity_before, quantity_after, etag_before) "
               "SELECT id, product_id, 'pending', quantity_before, quantity_after, etag_before "
               "FROM inventory_moves WHERE state = 'pending'")
    op.execute("UPDATE inventory_moves SET write_id = id WHERE state = 'pending'")
    op.execute("SELECT setval(pg_get_serial_sequence('stock_writes', 'id'), "
               "coalesce((SELECT max(id) FROM stock_writes), 0) + 1, false)")
    op.drop_index('ix_inventory_moves_pending', table_name='inventory_moves',
                  postgresql_where=sa.text("state = 'pending'"))
    op.drop_column('inventory_moves', 'quantity_before')
    op.drop_column('inventory_moves', 'quantity_after')
    op.drop_column('inventory_moves', 'etag_before')

    op.add_column('jobs', sa.Column('task_id', sa.String(length=155), nullable=True))
    op.create_index('ix_jobs_processing_task_id', 'jobs', ['task_id'], unique=False,
                    postgresql_where=sa.text("status = 'processing'"))
    op.drop_index('ix_jobs_cart_pending', table_name='jobs', postgresql_where=sa.text("cart_status = 'pending'"))
    op.create_index('ix_jobs_cart_pending', 'jobs', ['next_run_at'], unique=False,
                    postgresql_where=sa.text("cart_status = 'pending'"))


def downgrade():
    op.drop_index('ix_jobs_cart_pending', table_name='jobs', postgresql_where=sa.text("cart_status = 'pending'"))
    op.create_index('ix_jobs_cart_pending', 'jobs', ['updated_at'], unique=False,
                    postgresql_where=sa.text("cart_status = 'pending'"))
    op.drop_index('ix_jobs_processing_task_id', table_name='jobs', postgresql_where=sa.text("status = 'processing'"))
    op.drop_column('jobs', 'task_id')
    op.add_column('inventory_moves', sa.Column('etag_before', sa.String(length=128), nullable=True))
    op.add_column('inventory_moves', sa.Column('quantity_after', sa.Integer(), nullable=True))
    op.add_column('inventory_moves', sa.Column('quantity_before', sa.Integer(), nullable=True))
    op.execute("UPDATE inventory_moves m SET quantity_before = w.quantity_before, quantity_after = w.quantity_after, "
               "etag_before = w.etag_before FROM stock_writes w WHERE m.write_id = w.id AND m.state = 'pending'")
    op.create_index('ix_inventory_moves_pending', 'inventory_moves', ['product_id'], unique=False,
                    postgresql_where=sa.text("state = 'pending'"))
    op.drop_constraint(op.f('fk_inventory_moves_write_id_stock_writes'), 'inventory_moves', type_='foreignkey')
    op.drop_index(op.f('ix_inventory_moves_write_id'), table_name='inventory_moves')
    op.drop_column('inventory_moves', 'write_id')
    op.drop_index('ix_stock_writes_pending', table_name='stock_writes', postgresql_where=sa.text("state = 'pending'"))
    op.drop_table('stock_writes')

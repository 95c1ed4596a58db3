"""initial schema

Revision ID: e1f6222ba044
Revises: 
Create Date: 2026-11-25 13:59:35.882129
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'e1f6222ba044'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('step', sa.String(length=32), nullable=True),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('requested_items', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('items', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('error', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('cart_status', sa.String(length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('request_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("resolution IS NULL OR resolution IN ('rejected', 'failed')", name=op.f('ck_jobs_resolution_known')),
    sa.CheckConstraint("status IN ('queued', 'processing', 'retrying', 'completed', 'rejected', 'failed')", name=op.f('ck_jobs_status_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_jobs_idempotency_key'))
    )
    op.create_index('ix_jobs_cart_pending', 'jobs', ['updated_at'], unique=False, postgresql_where=sa.text("cart_status = 'pending'"))
    op.create_index(op.f('ix_jobs_customer_id'), 'jobs', ['customer_id'], unique=False)
    op.create_index('ix_jobs_unfinished_next_run_at', 'jobs', ['next_run_at'], unique=False, postgresql_where=sa.text("status IN ('queued', 'processing', 'retrying')"))
    op.create_table('inventory_moves',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('quantity_before', sa.Integer(), nullable=True),
    sa.Column('quantity_after', sa.Integer(), nullable=True),
    sa.Column('etag_before', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('take', 'give_back')", name=op.f('ck_inventory_moves_kind_known')),
    sa.CheckConstraint("state IN ('planned', 'pending', 'applied')", name=op.f('ck_inventory_moves_state_known')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_inventory_moves_quantity_positive')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_inventory_moves_job_id_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_moves')),
    sa.UniqueConstraint('job_id', 'product_id', 'kind', name=op.f('uq_inventory_moves_job_id'))
    )
    op.create_index(op.f('ix_inventory_moves_job_id'), 'inventory_moves', ['job_id'], unique=False)
    op.create_index('ix_inventory_moves_pending', 'inventory_moves', ['product_id'], unique=False, postgresql_where=sa.text("state = 'pending'"))
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_orders_job_id_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('job_id', name=op.f('uq_orders_job_id'))
    )
    op.create_index(op.f('ix_orders_customer_id'), 'orders', ['customer_id'], unique=False)
    op.create_table('order_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_order_items_quantity_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_items_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_items')),
    sa.UniqueConstraint('order_id', 'product_id', name=op.f('uq_order_items_order_id'))
    )
    op.create_index(op.f('ix_order_items_order_id'), 'order_items', ['order_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_order_items_order_id'), table_name='order_items')
    op.drop_table('order_items')
    op.drop_index(op.f('ix_orders_customer_id'), table_name='orders')
    op.drop_table('orders')
    op.drop_index('ix_inventory_moves_pending', table_name='inventory_moves', postgresql_where=sa.text("state = 'pending'"))
    op.drop_index(op.f('ix_inventory_moves_job_id'), table_name='inventory_moves')
    op.drop_table('inventory_moves')
    op.drop_index('ix_jobs_unfinished_next_run_at', table_name='jobs', postgresql_where=sa.text("status IN ('queued', 'processing', 'retrying')"))
    op.drop_index(op.f('ix_jobs_customer_id'), table_name='jobs')
    op.drop_index('ix_jobs_cart_pending', table_name='jobs', postgresql_where=sa.text("cart_status = 'pending'"))
    op.drop_table('jobs')

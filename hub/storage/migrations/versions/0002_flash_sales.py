"""flash sales: the sales operations arm, and the sale an order was admitted by

Revision ID: 0002_flash_sales
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0002_flash_sales'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'flash_sales',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('sku', sa.String(length=64), nullable=False),
        sa.Column('location_id', sa.String(length=32), nullable=False),
        sa.Column('quota', sa.Integer(), nullable=False),
        sa.Column('per_buyer_limit', sa.Integer(), nullable=False),
        sa.Column('min_interval_ms', sa.Integer(), nullable=False),
        sa.Column('price_fen', sa.Integer(), nullable=True),
        sa.Column('starts_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('ends_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('ended_at', hub.storage.tables.UtcDateTime(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['location_id'], ['locations.id']),
        sa.ForeignKeyConstraint(['sku'], ['skus.code']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('flash_sale_id', sa.String(length=40), nullable=True))
        batch.create_index('ix_orders_flash_sale_id', ['flash_sale_id'])


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.drop_index('ix_orders_flash_sale_id')
        batch.drop_column('flash_sale_id')
    op.drop_table('flash_sales')

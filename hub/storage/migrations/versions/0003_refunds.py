"""refunds: each refund asked of the payment platform, by its out_refund_no

Revision ID: 0003_refunds
Revises: 0002_flash_sales
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0003_refunds'
down_revision = '0002_flash_sales'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'refunds',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('refund_no', sa.String(length=64), nullable=False),
        sa.Column('order_id', sa.String(length=40), nullable=False),
        sa.Column('payment_ref', sa.String(length=64), nullable=False),
        sa.Column('paid_fen', sa.Integer(), nullable=False),
        sa.Column('amount_fen', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=80), nullable=False),
        sa.Column('cause', sa.String(length=24), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('request_key', sa.String(length=160), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('platform_refund_id', sa.String(length=64), nullable=True),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('created_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('updated_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('settled_at', hub.storage.tables.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('refund_no'),
        sa.UniqueConstraint('order_id', 'request_key', name='uq_refund_request'),
    )
    op.create_index('ix_refunds_order_id', 'refunds', ['order_id'])
    op.create_index('ix_refunds_status', 'refunds', ['status', 'updated_at'])


def downgrade() -> None:
    op.drop_index('ix_refunds_status', table_name='refunds')
    op.drop_index('ix_refunds_order_id', table_name='refunds')
    op.drop_table('refunds')

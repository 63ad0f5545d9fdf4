"""channel allocation: what each channel with a share holds open per (SKU, store), and which channel a
reservation counts against; who delivers an order (the platform's rider), the rider's last position; a
channel's refunds of its own orders and the units they took off the lines

Revision ID: 0025
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'channel_reserved',
        sa.Column('channel', sa.String(length=32), primary_key=True),
        sa.Column('sku', sa.String(length=64), sa.ForeignKey('skus.code'), primary_key=True),
        sa.Column('location_id', sa.String(length=32), sa.ForeignKey('locations.id'), primary_key=True),
        sa.Column('reserved', sa.Integer(), server_default='0', nullable=False),
    )
    with op.batch_alter_table('reservations') as batch:
        batch.add_column(sa.Column('channel', sa.String(length=32), nullable=True))
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('rider', sa.String(length=16), nullable=True))
    with op.batch_alter_table('order_lines') as batch:
        batch.add_column(sa.Column('qty_refunded', sa.Integer(), nullable=True))
    op.create_table(
        'channel_refunds',
        sa.Column('channel', sa.String(length=32), primary_key=True),
        sa.Column('refund_id', sa.String(length=64), primary_key=True),
        sa.Column('order_id', sa.String(length=40), sa.ForeignKey('orders.id'), nullable=False, index=True),
        sa.Column('lines', sa.JSON(), nullable=True),
        sa.Column('agreed', sa.Boolean(), nullable=False),
        sa.Column('after_sale', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('decided_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('told_at', hub.storage.tables.UtcDateTime(), nullable=True),
    )
    with op.batch_alter_table('shipments') as batch:
        batch.add_column(sa.Column('rider_lat', sa.Float(), nullable=True))
        batch.add_column(sa.Column('rider_lng', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('shipments') as batch:
        batch.drop_column('rider_lng')
        batch.drop_column('rider_lat')
    op.drop_table('channel_refunds')
    with op.batch_alter_table('order_lines') as batch:
        batch.drop_column('qty_refunded')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('rider')
    with op.batch_alter_table('reservations') as batch:
        batch.drop_column('channel')
    op.drop_table('channel_reserved')

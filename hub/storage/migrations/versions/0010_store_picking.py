"""the store's day: picking recorded on the order (when, by whom) and on its lines (qty picked), the buyer's
note, the product master's shelf hint (bin), and a store's pause

Revision ID: 0010
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0010'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('note', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('picked_at', hub.storage.tables.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column('picked_by', sa.String(length=100), nullable=True))
    with op.batch_alter_table('order_lines') as batch:
        batch.add_column(sa.Column('qty_picked', sa.Integer(), nullable=True))
    with op.batch_alter_table('skus') as batch:
        batch.add_column(sa.Column('bin', sa.String(length=32), nullable=True))
    op.create_table(
        'store_status',
        sa.Column('location_id', sa.String(length=32), sa.ForeignKey('locations.id'), primary_key=True),
        sa.Column('paused', sa.Boolean(), nullable=False),
        sa.Column('paused_until', hub.storage.tables.UtcDateTime(), nullable=True),
        sa.Column('reason', sa.String(length=200), nullable=True),
        sa.Column('updated_at', hub.storage.tables.UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('store_status')
    with op.batch_alter_table('skus') as batch:
        batch.drop_column('bin')
    with op.batch_alter_table('order_lines') as batch:
        batch.drop_column('qty_picked')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('picked_by')
        batch.drop_column('picked_at')
        batch.drop_column('note')

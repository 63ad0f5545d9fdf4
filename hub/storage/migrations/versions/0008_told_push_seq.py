"""channel sync: number the pushes per (channel, SKU, store), so overlapping pushes are known

Revision ID: 0008
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channel_stock_published') as batch:
        batch.add_column(sa.Column('push_seq', sa.BigInteger(), server_default='0', nullable=False))
        batch.add_column(sa.Column('untrusted_through', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('channel_stock_published') as batch:
        batch.drop_column('untrusted_through')
        batch.drop_column('push_seq')

"""channel order pulls: each channel's cursor (every order it changed before it is taken), the last pull, and
the orders the pull found that the pushes never delivered

Revision ID: 0024
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0024'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'channel_order_pulls',
        sa.Column('system', sa.String(length=64), primary_key=True),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('cursor_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('last_pull_at', hub.storage.tables.UtcDateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('listed', sa.BigInteger(), nullable=False),
        sa.Column('missed', sa.BigInteger(), nullable=False),
        sa.Column('last_missed_at', hub.storage.tables.UtcDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('channel_order_pulls')

"""retries due: a consumer's event an external system said to try again later (WeChat's 10060001, the
payment not yet visible), run again by the scheduler's timer until its deadline, then parked

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'retries_due',
        sa.Column('consumer', sa.String(length=96), primary_key=True),
        sa.Column('message_id', sa.String(length=128), primary_key=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('first_failed_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('due_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('give_up_at', hub.storage.tables.UtcDateTime(), nullable=False),
    )
    op.create_index('ix_retries_due_due_at', 'retries_due', ['due_at'])


def downgrade() -> None:
    op.drop_index('ix_retries_due_due_at', 'retries_due')
    op.drop_table('retries_due')

"""a booking's escalation: the tip added (fen), the penalty its cancel cost (fen), the last escalation step and
when it was taken

Revision ID: 0022
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0022'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('shipments') as batch:
        batch.add_column(sa.Column('tip_fen', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('penalty_fen', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('escalation', sa.String(length=24), nullable=True))
        batch.add_column(sa.Column('escalation_detail', sa.String(length=300), nullable=True))
        batch.add_column(sa.Column('escalated_at', hub.storage.tables.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('shipments') as batch:
        batch.drop_column('escalated_at')
        batch.drop_column('escalation_detail')
        batch.drop_column('escalation')
        batch.drop_column('penalty_fen')
        batch.drop_column('tip_fen')

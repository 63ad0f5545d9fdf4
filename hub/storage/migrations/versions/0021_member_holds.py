"""member holds: per order request (Idempotency-Key), the coupon and points held at the CRM and the attempt
holding them, so a retried request never adopts what an earlier attempt's give-back releases

Revision ID: 0021
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0021'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'member_holds',
        sa.Column('order_key', sa.String(length=40), primary_key=True),
        sa.Column('member_id', sa.String(length=64), nullable=False),
        sa.Column('coupon_code', sa.String(length=128), nullable=True),
        sa.Column('points', sa.Integer(), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('points_asked', sa.Boolean(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('updated_at', hub.storage.tables.UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('member_holds')

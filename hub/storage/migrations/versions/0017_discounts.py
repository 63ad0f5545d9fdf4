"""discounts: an order's discounts (coupon, member price, points, channel subsidy) and each line's amount
after its share of them

Revision ID: 0017
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('discounts', sa.JSON(), nullable=True))
    op.add_column('order_lines', sa.Column('amount_fen', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('order_lines', 'amount_fen')
    op.drop_column('orders', 'discounts')

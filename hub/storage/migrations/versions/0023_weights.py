"""weights: the product master's weight per SKU (grams), and each order line's unit weight as it was when
the order was placed, so a basket's weight (what couriers are told) does not move with a later pull

Revision ID: 0023
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('skus', sa.Column('weight_g', sa.Integer(), nullable=True))
    op.add_column('order_lines', sa.Column('unit_weight_g', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('order_lines', 'unit_weight_g')
    op.drop_column('skus', 'weight_g')

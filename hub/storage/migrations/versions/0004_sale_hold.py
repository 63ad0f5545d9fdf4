"""flash sales hold their quota: the sale's stock_held flag, and the sale a reservation was drawn from

Revision ID: 0004_sale_hold
Revises: 0003_refunds
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_sale_hold'
down_revision = '0003_refunds'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Sales armed before this revision keep reserving unit by unit (stock_held false).
    with op.batch_alter_table('flash_sales') as batch:
        batch.add_column(sa.Column('stock_held', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('reservations') as batch:
        batch.add_column(sa.Column('flash_sale_id', sa.String(length=40), nullable=True))
        batch.create_index('ix_reservations_flash_sale_id', ['flash_sale_id'])
        batch.create_foreign_key('fk_reservations_flash_sale_id', 'flash_sales', ['flash_sale_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('reservations') as batch:
        batch.drop_constraint('fk_reservations_flash_sale_id', type_='foreignkey')
        batch.drop_index('ix_reservations_flash_sale_id')
        batch.drop_column('flash_sale_id')
    with op.batch_alter_table('flash_sales') as batch:
        batch.drop_column('stock_held')

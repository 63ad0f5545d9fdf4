"""a flash sale counts the units its orders drew (flash_sales.drawn): the ledger enforces the quota itself

Revision ID: 0005
Revises: 0004_sale_hold
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004_sale_hold'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('flash_sales') as batch:
        batch.add_column(sa.Column('drawn', sa.Integer(), server_default='0', nullable=False))
    # Sales running across the upgrade: what their orders already drew (as inventory.drawn_from counts it).
    op.execute("UPDATE flash_sales SET drawn = (SELECT COALESCE(SUM(r.qty), 0) FROM reservations r "
               "WHERE r.flash_sale_id = flash_sales.id AND r.status IN ('open', 'committed', 'returned'))")


def downgrade() -> None:
    with op.batch_alter_table('flash_sales') as batch:
        batch.drop_column('drawn')

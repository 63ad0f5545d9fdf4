"""dead letters say what kind they are: failed (retries ran out) or unknown_outcome (a create whose
answer was lost and that cannot be looked up: replay asks first whether to resend); an express
shipment says how its tracking comes (push, or polling once the courier stopped pushing)

Revision ID: 0009
Revises: 0004_sale_hold
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0004_sale_hold'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dead_letters') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=24), server_default='failed', nullable=False))
    with op.batch_alter_table('shipments') as batch:
        batch.add_column(sa.Column('tracking', sa.String(length=16), server_default='push', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('shipments') as batch:
        batch.drop_column('tracking')
    with op.batch_alter_table('dead_letters') as batch:
        batch.drop_column('kind')

"""dead letters say what kind they are: failed (retries ran out) or unknown_outcome (a create whose
answer was lost and that cannot be looked up: replay asks first whether to resend); an express
shipment says how its tracking comes (push, or polling once the courier stopped pushing); the
returns and refunds of completed orders sent to the ERP (erp_returns), once per return id

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dead_letters') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=24), server_default='failed', nullable=False))
    with op.batch_alter_table('shipments') as batch:
        batch.add_column(sa.Column('tracking', sa.String(length=16), server_default='push', nullable=False))
    op.create_table(
        'erp_returns',
        sa.Column('return_id', sa.String(length=80), primary_key=True),
        sa.Column('order_id', sa.String(length=40), sa.ForeignKey('orders.id'), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('added_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('erp_document_no', sa.String(length=64), nullable=True),
    )
    op.create_index('ix_erp_returns_order_id', 'erp_returns', ['order_id'])


def downgrade() -> None:
    op.drop_index('ix_erp_returns_order_id', 'erp_returns')
    op.drop_table('erp_returns')
    with op.batch_alter_table('shipments') as batch:
        batch.drop_column('tracking')
    with op.batch_alter_table('dead_letters') as batch:
        batch.drop_column('kind')

"""payment reconciliation: each comparison of a payment system's daily bills with the hub (a run, with
its counts or its error) and the lines where they differ

Revision ID: 0012
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

import hub.storage.tables

revision = '0012'
down_revision = '0009'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'payment_reconciliations',
        sa.Column('id', BIG_ID, primary_key=True, autoincrement=True),
        sa.Column('system', sa.String(length=32), nullable=False),
        sa.Column('bill_date', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('bill_payments', sa.Integer(), nullable=False),
        sa.Column('bill_refunds', sa.Integer(), nullable=False),
        sa.Column('differences', sa.Integer(), nullable=False),
        sa.Column('repaired', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('started_at', hub.storage.tables.UtcDateTime(), nullable=False),
        sa.Column('finished_at', hub.storage.tables.UtcDateTime(), nullable=False),
    )
    op.create_index('ix_payment_reconciliations_day', 'payment_reconciliations', ['system', 'bill_date'])
    op.create_table(
        'payment_differences',
        sa.Column('id', BIG_ID, primary_key=True, autoincrement=True),
        sa.Column('run_id', BIG_ID, sa.ForeignKey('payment_reconciliations.id'), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('order_id', sa.String(length=64), nullable=False),
        sa.Column('transaction_id', sa.String(length=64), nullable=False),
        sa.Column('refund_no', sa.String(length=64), nullable=False),
        sa.Column('bill_fen', sa.Integer(), nullable=True),
        sa.Column('hub_fen', sa.Integer(), nullable=True),
        sa.Column('repaired', sa.Boolean(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
    )
    op.create_index('ix_payment_differences_run_id', 'payment_differences', ['run_id'])


def downgrade() -> None:
    op.drop_index('ix_payment_differences_run_id', 'payment_differences')
    op.drop_table('payment_differences')
    op.drop_index('ix_payment_reconciliations_day', 'payment_reconciliations')
    op.drop_table('payment_reconciliations')

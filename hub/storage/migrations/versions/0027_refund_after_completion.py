"""refunds.after_completion: a refund recorded once its order had completed (it takes back earned points;
one before completion was never earned on)

Revision ID: 0027
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('refunds') as batch:
        batch.add_column(sa.Column('after_completion', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Refunds recorded before this revision: after completion when recorded after the order's completed
    # transition (by time: the only record older refunds have of it).
    op.execute(sa.text(
        "UPDATE refunds SET after_completion = :yes WHERE EXISTS (SELECT 1 FROM order_transitions t "
        "WHERE t.order_id = refunds.order_id AND t.to_status = 'completed' AND t.at <= refunds.created_at)"
    ).bindparams(yes=True))


def downgrade() -> None:
    with op.batch_alter_table('refunds') as batch:
        batch.drop_column('after_completion')

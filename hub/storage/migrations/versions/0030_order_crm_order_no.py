"""orders.crm_order_no: the CRM order_no the order's coupon and points are held under (the attempt it adopted),
so the CRM consumers read it from the order, never from member_holds rows that housekeeping removes

Revision ID: 0030
Revises: 0023
"""
import hashlib

import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0023'
branch_labels = None
depends_on = None


def _order_key(channel: str, idempotency_key: str) -> str:
    # flows/members.py order_key, written out: a migration must not change when the code does
    return "K" + hashlib.sha256(f"{channel}\n{idempotency_key}".encode()).hexdigest()[:31]


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('crm_order_no', sa.String(length=48), nullable=True))
    # Orders placed before: their placed attempt's order_no while its member_holds row is still there (a
    # retried attempt holds under `<key>.<generation>`); the rest held under the bare key.
    bind = op.get_bind()
    placed = {key: gen for key, gen in bind.execute(sa.text(
        "SELECT order_key, generation FROM member_holds WHERE state = 'placed'"))}
    rows = bind.execute(sa.text("SELECT id, channel, idempotency_key FROM orders WHERE discounts IS NOT NULL"))
    for order_id, channel, idempotency_key in list(rows):
        key = _order_key(channel, idempotency_key)
        gen = placed.get(key, 0)
        bind.execute(sa.text("UPDATE orders SET crm_order_no = :no WHERE id = :id"),
                     {"no": key if not gen else f"{key}.{gen}", "id": order_id})


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('crm_order_no')

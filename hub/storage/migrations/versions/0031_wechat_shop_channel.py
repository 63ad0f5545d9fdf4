"""the WeChat shop's orders move to a channel of their own (`wechat_shop`, `payment: channel` in config.yaml): those
placed before were the mini-program's (WeChat Pay's); moved, so the shop's next push or pull finds each by its
Idempotency-Key under the new channel instead of placing it again. The names are config.yaml's (the system and
channel `wechat_shop`, the old channel `miniprogram`); a reservation keeps the channel that counted it
(`reservations.channel`), so the channels' counts stay as they are.

Revision ID: 0031
Revises: 0030
"""
import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE orders SET channel = 'wechat_shop' WHERE channel = 'miniprogram' "
                       "AND idempotency_key LIKE 'wechat\\_shop:%' ESCAPE '\\'"))
    op.execute(sa.text("UPDATE channel_order_pulls SET channel = 'wechat_shop' WHERE system = 'wechat_shop' "
                       "AND channel = 'miniprogram'"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE orders SET channel = 'miniprogram' WHERE channel = 'wechat_shop'"))
    op.execute(sa.text("UPDATE channel_order_pulls SET channel = 'miniprogram' WHERE system = 'wechat_shop'"))

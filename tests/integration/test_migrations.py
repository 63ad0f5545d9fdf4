"""`hub db upgrade` builds exactly the schema the models describe."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.storage.tables import Base


def test_migrations_match_the_models(ctx):
    with ctx.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_the_wechat_shops_orders_placed_before_move_to_its_channel_and_none_else(tmp_path):
    """Migration 0031: a shop order placed under the mini-program channel is found by the shop's next push under
    `wechat_shop` (not placed twice); the mini-program's own orders stay."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from hub.storage.migrate import upgrade

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(engine, "0030")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    orders = sa.Table("orders", sa.MetaData(), autoload_with=engine)
    row = {"request_hash": "h", "status": "allocated", "fulfillment_type": "pickup", "buyer": {}, "total_fen": 1,
           "pickup_attempts": 0, "created_at": now, "updated_at": now, "version": 1}
    with engine.begin() as conn:
        conn.execute(orders.insert(), [
            {**row, "id": "O-shop", "channel": "miniprogram", "idempotency_key": "wechat_shop:1"},
            {**row, "id": "O-own", "channel": "miniprogram", "idempotency_key": "wechatXshop:2"}])  # `_`: no wildcard
    upgrade(engine, "head")
    with engine.connect() as conn:
        assert dict(conn.execute(sa.select(orders.c.id, orders.c.channel)).tuples().all()) == {
            "O-shop": "wechat_shop", "O-own": "miniprogram"}
    engine.dispose()

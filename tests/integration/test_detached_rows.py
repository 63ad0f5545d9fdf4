"""Rows written outside the ORM (hub/storage/uow.py): queued, sent in one statement on PostgreSQL
(parents and children together, foreign keys satisfied), written by the unit of work's commit if the
caller did not send them, and gone with a rollback."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from hub.storage.tables import OrderLineRow, OrderRow, OrderTransition, Reservation, utcnow
from hub.storage.uow import insert_detached, write_detached
from tests.support import statements_run


def _order(order_id: str) -> list:
    now = utcnow()
    order = OrderRow(id=order_id, channel="miniprogram", idempotency_key=order_id, request_hash="h",
                     status="pending_payment", fulfillment_type="pickup", location_id="S001",
                     buyer={"id": "b1", "name": "", "phone": ""}, total_fen=300, created_at=now, updated_at=now,
                     expires_at=now + timedelta(minutes=15))
    lines = [OrderLineRow(order_id=order_id, sku=sku, qty=1, unit_price_fen=100, location_id="S001")
             for sku in ("TEA-001", "CUP-002", "TEA-001")]
    history = OrderTransition(order_id=order_id, from_status=None, to_status="pending_payment", at=now,
                              source="miniprogram")
    hold = Reservation(order_id=order_id, sku="TEA-001", location_id="S001", qty=1, status="open", created_at=now)
    return [order, *lines, history, hold]


def _count(ctx, table, order_id: str) -> int:
    column = table.id if table is OrderRow else table.order_id
    with ctx.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(table).where(column == order_id)).scalar_one()


def test_an_order_and_its_children_go_in_one_statement_on_postgresql(ctx):
    with statements_run(ctx.engine) as statements, ctx.uow() as uow:
        insert_detached(uow, *_order("O-1"))
        write_detached(uow)
        uow.commit()
    inserts = [s for s in statements if s.startswith(("insert", "with"))]
    assert len(inserts) == (1 if ctx.engine.dialect.name == "postgresql" else 4)   # SQLite: one per table
    assert [_count(ctx, t, "O-1") for t in (OrderRow, OrderLineRow, OrderTransition, Reservation)] == [1, 3, 1, 1]
    with ctx.uow() as uow:
        order = uow.session.get(OrderRow, "O-1")
        assert order.buyer == {"id": "b1", "name": "", "phone": ""} and order.total_fen == 300   # JSON, typed


def test_the_commit_sends_queued_rows_and_a_rollback_drops_them(ctx):
    with ctx.uow() as uow:
        insert_detached(uow, *_order("O-2"))
        uow.commit()                                         # never sent by the caller: the commit does
    assert _count(ctx, OrderRow, "O-2") == 1 and _count(ctx, OrderLineRow, "O-2") == 3
    with ctx.uow() as uow:
        insert_detached(uow, *_order("O-3"))
        uow.rollback()
        uow.commit()                                         # nothing queued is left to write
    with ctx.uow() as uow:
        insert_detached(uow, *_order("O-4"))         # the block ends without a commit
    assert _count(ctx, OrderRow, "O-3") == 0 and _count(ctx, OrderRow, "O-4") == 0

"""An order's discounts shared over its lines, stored (SQLite and PostgreSQL), used by totals and refunds."""
from __future__ import annotations

from dataclasses import replace

import pytest

from hub.domain.discounts import Discount, DiscountKind
from hub.domain.errors import BadInput
from hub.domain.model import Buyer, Fulfillment, FulfillmentType, OrderLine
from hub.domain.refunds import line_refund_fen
from hub.services import inventory, orders
from hub.storage.tables import Reservation
from tests.support import count

COUPON = Discount(DiscountKind.COUPON, 1000, "CPN-1")
POINTS = Discount(DiscountKind.POINTS, 301, "HOLD-1")


def stock_up(ctx, qty=10):
    with ctx.uow() as uow:
        for sku in ("TEA-001", "CUP-002"):
            inventory.apply_count(uow, count(sku, "S001", qty, 0))
        uow.commit()


def cmd(discounts=(COUPON, POINTS), key="d1", **kw):
    lines = (OrderLine("TEA-001", 2, 12800), OrderLine("CUP-002", 3, 1999))
    return orders.PlaceOrder("miniprogram", key, lines, Buyer("b1", "Li Lei", "138"),
                             Fulfillment(FulfillmentType.PICKUP, "S001"), discounts=discounts, **kw)


def test_lines_carry_their_share_and_the_total_is_after_discounts(ctx):
    stock_up(ctx)
    with ctx.uow() as uow:
        order, _ = orders.place(uow, ctx.config, cmd(coupon_code="CPN-1", points=301))
        uow.commit()
        order_id = order.id
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        values = [25600, 5997]
        amounts = [x.amount_fen for x in order.lines]
        assert sum(values) - sum(amounts) == 1301
        assert amounts == [25600 - 1301 * 25600 // 31597, 5997 - (1301 - 1301 * 25600 // 31597)]
        assert order.total_fen == sum(amounts)
        assert order.discounts == [COUPON.to_dict(), POINTS.to_dict()]
        assert orders.snapshot(order).lines[0].amount_fen == amounts[0]          # what the ERP is sent
        tea = order.lines[0]
        assert line_refund_fen(tea, 1) == tea.amount_fen - tea.amount_fen // 2
        assert line_refund_fen(tea, 2) == tea.amount_fen


def test_a_discount_above_the_order_is_refused_with_nothing_reserved(ctx):
    stock_up(ctx)
    with ctx.uow() as uow, pytest.raises(BadInput, match="more than the lines"):
        orders.place(uow, ctx.config, cmd((Discount(DiscountKind.COUPON, 31598, "BIG"),)))
    with ctx.reader() as uow:
        assert uow.session.query(Reservation).count() == 0


def test_the_fingerprint_is_what_the_client_sent():
    plain = cmd(())
    assert plain.fingerprint() == replace(plain, discounts=(COUPON,)).fingerprint()   # granted, not sent
    assert plain.fingerprint() != cmd((), coupon_code="CPN-1").fingerprint()
    assert cmd((), points=10).fingerprint() != cmd((), points=11).fingerprint()

"""Issue 23: refunds the platform asks for its own orders (部分退款 with the lines, 全额退款), against its
simulator: decided once, the lines adjusted, what the store still holds back in available stock (before
the pick and after it, until the goods leave; after that money only), the ERP sent the lines the buyer kept,
the answer given through refund/agree or refund/reject — and never a WeChat Pay refund."""
from __future__ import annotations

import time
from decimal import Decimal

from sqlalchemy import select
from werkzeug.test import Client

from hub import handlers
from hub.api.app import build_api
from hub.services import inventory, orders, picking
from hub.services import tracking as fulfilment
from hub.storage.tables import ChannelRefundRow, StockMovement, utcnow

from .test_erp_returns import returns_sent, sap  # noqa: F401 — the SAP simulator fixture

LINES = [("TEA-001", 3, 12800), ("CUP-002", 1, 4500)]


def post(flow, params):
    return Client(build_api(flow.ctx)).post("/callbacks/meituan", data=params)


def push_url(flow) -> str:
    return flow.ctx.connectors.channel("meituan").push_url


def refund(flow, order_id: str, refund_id: str, lines, reason: str = "商品缺失"):
    return post(flow, flow.sandbox.meituan.refund_params(push_url(flow), order_id, refund_id, lines, reason))


def taken(flow, external_id: str, **seed):
    mt = flow.sandbox.meituan
    mt.seed_order(external_id, LINES, "S001", status=2, **seed)
    params = mt.push_params(push_url(flow), external_id, "order")
    assert post(flow, params).status_code == 200
    with flow.ctx.uow() as uow:
        order = orders.find_by_idempotency(uow, "meituan", f"meituan:{external_id}")
        assert order is not None
        return order.id


def level(flow, sku: str = "TEA-001") -> tuple[int, int]:
    with flow.ctx.uow() as uow:
        held = inventory.stock_at(uow.session, flow.ctx.config, sku, "S001")
        return held.on_hand, held.reserved


def lines_of(flow, order_id: str) -> dict[str, tuple[int, int | None, int | None, int | None]]:
    with flow.ctx.uow() as uow:
        return {x.sku: (x.qty, x.qty_picked, x.qty_refunded, x.amount_fen)
                for x in orders.get(uow, order_id).lines}


def test_a_part_refund_before_the_pick_adjusts_lines_stock_and_the_erps_lines(flow):
    order_id = taken(flow, "6101", pick_type=1)
    assert level(flow) == (10, 3)
    r = refund(flow, "6101", "R-1", [("TEA-001", 1)])
    assert r.status_code == 200 and r.json == {"data": "ok"}
    assert flow.sandbox.meituan.refunds["R-1"]["status"] == "agreed"
    assert lines_of(flow, order_id)["TEA-001"] == (2, None, 1, 2 * 12800)
    assert level(flow) == (10, 2)                       # the unit never left the shelf: available again
    with flow.ctx.uow() as uow:
        [row] = uow.session.execute(select(StockMovement).where(StockMovement.kind == "release",
                                                                StockMovement.sku == "TEA-001")).scalars()
        assert (row.qty, row.external_id) == (1, f"order:{order_id}:refund:R-1")
    assert refund(flow, "6101", "R-1", [("TEA-001", 1)]).status_code == 200     # pushed again: once
    assert lines_of(flow, order_id)["TEA-001"][0] == 2 and level(flow) == (10, 2)
    assert flow.order(order_id).status == "allocated"    # a partial refund leaves the status alone

    with flow.ctx.uow() as uow:                          # the store picks what is left and hands it over
        picking.complete(uow, "S001", order_id, [], "Wang", utcnow())
        uow.commit()
    flow.move(order_id, "collected")
    with flow.ctx.uow() as uow:
        fulfilment.complete(uow, orders.get(uow, order_id, lock=True), "test", "handed over")
        uow.commit()
    assert level(flow) == (8, 0) and level(flow, "CUP-002") == (9, 0)
    flow.deliver(handlers.ERP_SALES_ORDER, "order.status_changed", order_id=order_id, to="completed")
    [sent] = [o for o in flow.sandbox.erp.received_orders if o["ExternalRef"] == order_id]
    assert _erp_lines(sent) == {"TEA-001": 2, "CUP-002": 1}, sent
    assert int(sent["TotalAmount"] * 100) == 2 * 12800 + 4500              # the kept lines' amount
    assert flow.events("order.refund_due") == [] and flow.sandbox.wechat_pay.refunds == {}


def _erp_lines(sent) -> dict[str, int]:
    return {str(x["ItemNo"]): int(x["Quantity"]) for x in sent["Lines"]}


def test_after_the_pick_the_held_units_go_back_and_after_they_left_it_is_money_only(flow):
    order_id = taken(flow, "6102", pick_type=0, logistics_code="1001")
    flow.deliver(handlers.CHANNEL_ORDER_PROGRESS, "order.status_changed", order_id=order_id, to="allocated")
    with flow.ctx.uow() as uow:
        picking.complete(uow, "S001", order_id, [picking.Picked("TEA-001", 2)], "Wang", utcnow())   # one short
        uow.commit()
    assert level(flow) == (9, 2)
    assert refund(flow, "6102", "R-2", [("TEA-001", 1)]).status_code == 200       # picked, still in the store
    assert lines_of(flow, order_id)["TEA-001"][:3] == (2, 1, 1) and level(flow) == (9, 1)
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="picked")
    t0 = int(time.time()) - 600
    for code, at in ((10, t0), (20, t0 + 60)):                                   # the platform's rider has it
        params = flow.sandbox.meituan.rider_params(push_url(flow), "6102", code, at=at)
        assert post(flow, params).status_code == 200
    assert flow.order(order_id).status == "picked_up" and level(flow) == (8, 0)
    assert refund(flow, "6102", "R-3", [("CUP-002", 1)]).status_code == 200      # on its way: money only
    assert lines_of(flow, order_id)["CUP-002"][:3] == (0, 0, 1)
    assert level(flow, "CUP-002") == (9, 0)                                        # no stock moved
    assert flow.order(order_id).status == "picked_up"
    assert [flow.sandbox.meituan.refunds[r]["status"] for r in ("R-2", "R-3")] == ["agreed", "agreed"]


def test_a_refund_of_more_than_is_left_is_rejected_with_the_reason_and_changes_nothing(flow):
    order_id = taken(flow, "6103", pick_type=1)
    assert refund(flow, "6103", "R-4", [("TEA-001", 4)]).status_code == 200
    answer = flow.sandbox.meituan.refunds["R-4"]
    assert answer["status"] == "rejected" and "4 asked, 3 left" in answer["reason"]
    assert refund(flow, "6103", "R-5", [("POT-003", 1)]).status_code == 200
    assert flow.sandbox.meituan.refunds["R-5"]["status"] == "rejected"
    assert lines_of(flow, order_id)["TEA-001"][:3] == (3, None, None) and level(flow) == (10, 3)
    with flow.ctx.uow() as uow:
        decided = {r.refund_id: r.agreed for r in uow.session.execute(select(ChannelRefundRow)).scalars()}
    assert decided == {"R-4": False, "R-5": False}


def test_a_whole_order_refund_cancels_it_and_releases_its_stock_without_wechat_pay(flow):
    order_id = taken(flow, "6104", pick_type=1)
    assert refund(flow, "6104", "R-6", None, "不想要了").status_code == 200
    assert flow.sandbox.meituan.refunds["R-6"]["status"] == "agreed"
    assert flow.order(order_id).status in ("cancelled", "refunded") and level(flow) == (10, 0)
    assert flow.events("order.refund_due") == []
    assert refund(flow, "6104", "R-7", [("TEA-001", 1)]).status_code == 200       # nothing left to refund
    assert flow.sandbox.meituan.refunds["R-7"]["status"] == "rejected"


def test_a_refund_for_an_order_the_hub_never_took_is_404_and_asked_again(flow):
    r = refund(flow, "6199", "R-8", [("TEA-001", 1)])
    assert r.status_code == 404 and r.json["data"] == "ng"
    assert flow.sandbox.meituan.refunds["R-8"]["status"] == "applied"


def test_malformed_refund_and_rider_pushes_are_4xx_and_change_nothing(flow):
    mt = flow.sandbox.meituan
    order_id = taken(flow, "6105", pick_type=1)
    sign = mt.push_params
    bad = [sign(push_url(flow), "6105", "part_refund", refund_id="R-9", food="[{not json"),
           sign(push_url(flow), "6105", "part_refund", refund_id="R-9", food="[]"),
           sign(push_url(flow), "6105", "part_refund", refund_id="R-9",
                food='[{"sku_id": "mt-nothing", "count": 1}]'),
           sign(push_url(flow), "6105", "part_refund", food='[{"sku_id": "mt-tea-001", "count": 1}]'),
           sign(push_url(flow), "6105", "logistics", logistics_status="77", time=str(int(time.time()))),
           sign(push_url(flow), "6105", "logistics", logistics_status="10", time=str(int(time.time())))]
    codes = [post(flow, params).status_code for params in bad]
    # the last: a rider report for a pickup order no platform rider carries, refused for good (not a 404 re-pushed)
    assert codes == [422, 422, 422, 422, 422, 422], codes
    assert lines_of(flow, order_id)["TEA-001"][:3] == (3, None, None) and level(flow) == (10, 3)
    with flow.ctx.uow() as uow:
        assert uow.session.execute(select(ChannelRefundRow)).first() is None



def test_a_part_refund_after_completion_leaves_the_sale_and_sends_a_credit_memo(flow, sap):  # noqa: F811
    order_id = taken(flow, "6107", pick_type=1)
    with flow.ctx.uow() as uow:
        picking.complete(uow, "S001", order_id, [], "Wang", utcnow())
        uow.commit()
    flow.move(order_id, "collected")
    with flow.ctx.uow() as uow:
        fulfilment.complete(uow, orders.get(uow, order_id, lock=True), "test", "handed over")
        uow.commit()
    assert level(flow) == (7, 0)
    assert refund(flow, "6107", "R-10", [("TEA-001", 2)], "少送").status_code == 200
    assert flow.sandbox.meituan.refunds["R-10"]["status"] == "agreed"
    assert lines_of(flow, order_id)["TEA-001"][:3] == (3, 3, None)    # the ERP's sale stands as it was
    assert level(flow) == (7, 0) and flow.order(order_id).status == "completed"       # money only
    assert refund(flow, "6107", "R-11", [("TEA-001", 2)]).status_code == 200          # 1 left to refund
    assert flow.sandbox.meituan.refunds["R-11"]["status"] == "rejected"
    for _ in range(2):                                                                 # redelivered: one memo
        flow.deliver(handlers.ERP_REFUND_LINES, "channel.refund_agreed", order_id=order_id)
    [memo] = returns_sent(sap)
    assert (memo["header"]["DOC_TYPE"], memo["header"]["PURCH_NO_C"]) == ("G2", "meituan:R-10")
    assert memo["header"]["ZZREFUND_AMOUNT"] == Decimal("256.00")                     # 2 x 128.00
    assert len(memo["items"]) == 1


def test_a_part_refund_is_an_entry_in_the_buyers_and_the_consoles_timeline_once(flow):
    """Which lines, how many units, how much money, who paid it back; the order's status stays, and a re-push
    of the same refund writes no second entry. A rejected refund writes none."""
    order_id = taken(flow, "6111", pick_type=1)
    assert refund(flow, "6111", "R-11", [("TEA-001", 1), ("CUP-002", 1)], "少送").status_code == 200
    assert refund(flow, "6111", "R-11", [("TEA-001", 1), ("CUP-002", 1)], "少送").status_code == 200
    assert refund(flow, "6111", "R-12", [("TEA-001", 5)]).status_code == 200          # more than is left
    assert flow.sandbox.meituan.refunds["R-12"]["status"] == "rejected"
    client = Client(build_api(flow.ctx))
    channel_key = flow.ctx.config.known_channel("meituan").key
    buyer = client.get(f"/api/v1/orders/{order_id}", headers={"Authorization": f"Bearer {channel_key}"}).json
    console = client.get(f"/admin/api/orders/{order_id}",
                         headers={"Authorization": f"Bearer {flow.ctx.config.hub.ops_key}"}).json
    for view in (buyer, console):
        entries = [e for e in view["timeline"] if e["status"] == "part_refunded"]
        assert [(e["source"], e["detail"]) for e in entries] == [(
            "meituan", "meituan refund R-11: TEA-001 x1 (128.00 yuan), CUP-002 x1 (45.00 yuan); "
                       "173.00 yuan back through meituan (少送)")]
        assert view["timeline"][-1]["status"] == "part_refunded"        # after the order's own changes
        assert view["status"] == "allocated"

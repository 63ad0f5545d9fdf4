"""The store's pick against the simulators: a short line refunded at WeChat Pay for exactly its amount, the
stock corrected (ledger `short_pick`), the ERP's sales order and the CRM's points on the picked lines; nothing
picked cancels and refunds; the rider booked when the store's dispatch policy says."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from werkzeug.test import Client

from hub import handlers
from hub.api.app import build_api
from hub.domain.model import Address
from hub.domain.order_states import OrderStatus as S
from hub.flows import delivery, erp_pull
from hub.services import inventory, money_owed, orders, picking, tracking
from hub.storage.tables import Shipment, StockLevel, StockMovement
from tests.flows.conftest import HANGZHOU, Flow, sandbox_ctx
from tests.support import T0, count

NEAR_S002 = Address("5 Hongqiao Road, Xuhui, Shanghai", 31.1950, 121.4375, "Han Mei", "13900139000")
NEAR_S001 = Address("88 Changde Road, Jing'an, Shanghai", 31.2301, 121.4456, "Han Mei", "13900139000")
LINES = [("TEA-001", 2, 12800), ("CUP-002", 1, 4500)]


def pick(flow, order_id: str, store: str, lines: list[tuple[str, int]]):
    with flow.ctx.uow() as uow:
        order = picking.complete(uow, store, order_id, [picking.Picked(s, q) for s, q in lines], "Wang", T0)
        uow.commit()
        return order.status


def level(flow, sku: str, loc: str) -> tuple[int, int]:
    with flow.ctx.uow() as uow:
        row = uow.session.get(StockLevel, (sku, loc))
        return row.on_hand, row.reserved


def test_short_pick_refunds_that_line_corrects_stock_and_the_erp_gets_the_picked_lines(flow):
    order_id = flow.place("pickup", LINES, store_id="S001", key="short-1")
    tx = flow.pay(order_id)
    assert pick(flow, order_id, "S001", [("TEA-001", 2), ("CUP-002", 0)]) == S.READY_FOR_PICKUP
    assert level(flow, "CUP-002", "S001") == (9, 0)     # the missing cup: off the shelf count, not reserved
    assert level(flow, "TEA-001", "S001") == (10, 2)
    with flow.ctx.uow() as uow:
        [row] = uow.session.execute(select(StockMovement).where(StockMovement.kind == "short_pick")).scalars()
        assert (row.sku, row.location_id, row.qty) == ("CUP-002", "S001", -1)
        [owed] = money_owed.of_order(uow, order_id)
        assert (owed.amount_fen, owed.cause) == (4500, "short_pick")
        history = [(t.to_status, t.detail) for t in orders.get(uow, order_id).transitions]
    assert ("picked", "picked by S001/Wang; CUP-002 short 1 of 1") in history
    flow.deliver(handlers.ASK_FOR_REFUND, "order.refund_due", order_id=order_id)
    [at_pay] = flow.sandbox.wechat_pay.refunds.values()
    assert (at_pay.transaction_id, at_pay.amount_fen) == (tx, 4500)
    again = pick(flow, order_id, "S001", [("TEA-001", 2), ("CUP-002", 0)])        # the same pick: same answer
    assert again == S.READY_FOR_PICKUP and len(flow.sandbox.wechat_pay.refunds) == 1
    assert flow.platform_notifies() == [200]
    assert flow.order(order_id).status == S.READY_FOR_PICKUP        # a partial refund leaves the status alone

    flow.move(order_id, "collected")
    with flow.ctx.uow() as uow:
        tracking.complete(uow, orders.get(uow, order_id, lock=True), "test", "handed over")
        uow.commit()
    flow.deliver(handlers.ERP_SALES_ORDER, "order.status_changed", order_id=order_id, to="completed")
    flow.deliver(handlers.CRM_POINTS, "order.status_changed", order_id=order_id, to="completed")
    [sent] = [o for o in flow.sandbox.erp.received_orders if o["ExternalRef"] == order_id]
    assert "CUP-002" not in str(sent) and "TEA-001" in str(sent)
    assert flow.sandbox.crm.member_by_ref("oBuyer001").points == 2 * 12800 // 100
    assert level(flow, "TEA-001", "S001") == (8, 0)


def test_nothing_picked_cancels_and_refunds_the_order(flow):
    order_id = flow.place("pickup", LINES, store_id="S001", key="zero-1")
    flow.pay(order_id)
    assert pick(flow, order_id, "S001", [("TEA-001", 0), ("CUP-002", 0)]) == S.CANCELLED
    assert level(flow, "TEA-001", "S001") == (8, 0) and level(flow, "CUP-002", "S001") == (9, 0)
    flow.deliver(handlers.ASK_FOR_REFUND, "order.refund_due", order_id=order_id)
    assert [r.amount_fen for r in flow.sandbox.wechat_pay.refunds.values()] == [2 * 12800 + 4500]
    assert flow.platform_notifies() == [200] and flow.order(order_id).status == S.REFUNDED


def test_default_policy_books_the_rider_only_when_the_pick_is_complete(flow):
    order_id = flow.place("delivery", LINES, address=NEAR_S002, key="late-rider")
    flow.pay(order_id)
    assert flow.order(order_id).location_id == "S002"
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="allocated")
    assert order_id not in flow.sandbox.local_delivery.deliveries and flow.order(order_id).status == S.ALLOCATED
    with flow.ctx.uow() as uow:
        picking.start(uow, "S002", order_id, "Wang", T0)
        uow.commit()
    assert delivery.book_rider(flow.ctx, order_id) is None        # a re-booking or the timer asking: still not due
    assert order_id not in flow.sandbox.local_delivery.deliveries and flow.order(order_id).status == S.PICKING
    assert pick(flow, order_id, "S002", []) == S.PICKED
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="picked")
    assert flow.sandbox.local_delivery.deliveries[order_id].booked
    assert flow.order(order_id).status == S.DISPATCHED


def test_a_store_that_books_at_payment_has_the_rider_before_the_pick(flow):
    order_id = flow.place("delivery", LINES, address=NEAR_S001, key="early-rider")   # S001: dispatch at_payment
    flow.pay(order_id)
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="allocated")
    assert flow.sandbox.local_delivery.deliveries[order_id].booked
    assert pick(flow, order_id, "S001", [("CUP-002", 0)]) == S.DISPATCHED      # the pick is recorded all the same
    with flow.ctx.uow() as uow:
        order = orders.get(uow, order_id)
        assert order.picked_by == "S001/Wang"
        assert sorted((x.sku, x.qty_picked) for x in order.lines) == [("CUP-002", 0), ("TEA-001", 2)]
        [owed] = money_owed.of_order(uow, order_id)
        assert owed.amount_fen == 4500


def store_list(flow, store: str, **query: str) -> list[dict]:
    """The store's order list over its key (the hub's real handler)."""
    key = flow.ctx.config.location(store).pos_key
    r = Client(build_api(flow.ctx)).get(f"/api/v1/stores/{store}/orders", query_string=query,
                                        headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.json
    return r.json["orders"]


def test_a_delivery_order_reaches_its_stores_pos_and_list_with_lines_shelves_promise_and_note(flow):
    erp_pull.pull_products(flow.ctx)             # the product master: TEA-001 on shelf A-03, CUP-002 on B-12
    order_id = flow.place("delivery", LINES, address=NEAR_S002, key="to-the-till")
    with flow.ctx.uow() as uow:
        orders.get(uow, order_id, lock=True).note = "leave at the door"
        uow.commit()
    flow.pay(order_id)
    flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="allocated")
    paid_at = flow.order(order_id).paid_at.replace(tzinfo=UTC)
    [at_till] = flow.sandbox.pos.orders_at("S002", "DELIVERY")
    assert at_till["reference_id"] == order_id and flow.sandbox.pos.orders_at("S001") == []
    assert [(i["quantity"], (i.get("metadata") or {}).get("bin")) for i in at_till["line_items"]] == [
        ("2", "A-03"), ("1", "B-12")]
    details = at_till["fulfillments"][0]["delivery_details"]
    assert datetime.fromisoformat(details["deliver_at"]) == paid_at + timedelta(minutes=60)
    assert details["note"] == "leave at the door"
    assert details["recipient"]["address"]["address_line_1"] == NEAR_S002.text

    [listed] = store_list(flow, "S002", fulfillment="delivery", status="allocated")    # placed at T0, not today
    assert (listed["order_id"], listed["status"], listed["note"]) == (order_id, "allocated", "leave at the door")
    assert [(x["sku"], x["qty"], x["bin"]) for x in listed["lines"]] == [("TEA-001", 2, "A-03"), ("CUP-002", 1, "B-12")]
    assert datetime.fromisoformat(listed["promised_at"]) == (paid_at + timedelta(minutes=60)).replace(microsecond=0)
    assert store_list(flow, "S002", fulfillment="pickup", status="allocated") == []

    assert pick(flow, order_id, "S002", []) == S.PICKED
    flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="picked")
    assert flow.sandbox.pos.pickup_state(order_id) == "PREPARED"        # the till shows it packed for the rider


def test_a_warehouses_parcel_never_reaches_a_till(flow):
    order_id = flow.place("express", LINES, address=HANGZHOU, key="parcel-wh")
    flow.pay(order_id)
    assert flow.order(order_id).location_id == "WH01"
    flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="allocated")
    assert flow.sandbox.pos.orders == {}


def shipping_from(flow, store: str) -> Flow:
    """The same database and simulators, with `store` packing parcels for the carrier (ships_express)."""
    key = f"pos_key: ${{HUB_POS_{store}_KEY}}\n"
    edit = lambda text: text.replace(key, key + "    ships_express: true\n")       # noqa: E731
    return Flow(sandbox_ctx(flow.ctx, flow.sandbox, edit), flow.sandbox)


def test_a_parcel_shipped_from_a_store_waits_for_the_pick_then_gets_its_waybill(flow):
    flow = shipping_from(flow, "S002")
    with flow.ctx.uow() as uow:                  # the warehouse has run out of tea: a store ships it
        inventory.apply_count(uow, count("TEA-001", "WH01", 0, minutes=5))
        uow.commit()
    order_id = flow.place("express", LINES, address=HANGZHOU, key="parcel-from-store")
    flow.pay(order_id)
    order = flow.order(order_id)
    assert (order.location_id, order.fulfillment_type, order.status) == ("S002", "express", S.ALLOCATED)
    assert "nearest store shipping parcels" in order.routing["rule"]

    flow.deliver(handlers.EXPRESS_WAYBILL, "order.status_changed", order_id=order_id, to="allocated")
    assert order_id not in flow.sandbox.express.orders and flow.order(order_id).status == S.ALLOCATED
    flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="allocated")
    [at_till] = flow.sandbox.pos.orders_at("S002", "SHIPMENT")
    assert at_till["reference_id"] == order_id
    assert at_till["fulfillments"][0]["shipment_details"]["expected_shipped_at"]      # the store's promise

    assert pick(flow, order_id, "S002", [("CUP-002", 0)]) == S.PICKED                 # one line short
    flow.deliver(handlers.EXPRESS_WAYBILL, "order.status_changed", order_id=order_id, to="picked")
    waybill = flow.sandbox.express.orders[order_id]
    assert "CUP-002" not in str(flow.sandbox.express.parcels[waybill].request)        # the picked lines only
    assert flow.order(order_id).status == S.SHIPPED
    with flow.ctx.uow() as uow:
        [shipment] = uow.session.execute(select(Shipment).where(Shipment.order_id == order_id)).scalars()
        assert (shipment.kind, shipment.shipment_ref) == ("express", waybill)
    assert level(flow, "TEA-001", "S002") == (8, 0)          # the store's stock left with the parcel
    # The till never heard of the pick (that event is late): it is prepared on the way to completed.
    flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="shipped")
    assert flow.sandbox.pos.pickup_state(order_id) == "COMPLETED"
    assert [s for _, ref, s in flow.sandbox.pos.state_changes if ref == order_id] == ["PREPARED", "COMPLETED"]

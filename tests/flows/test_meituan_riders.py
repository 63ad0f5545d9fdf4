"""Issue 23: who carries a platform's delivery order. The platform's own rider (logistics code 1001): picked,
handed over with `order/logistics/push`, then moved by the platform's signed logistics pushes to delivered.
The store's own courier (logistics code 0000): the hub books Dada and tells the platform each real change of
the rider (`ecommerce/order/logistics/sync`: name, phone, status, GCJ-02 position), once per change."""
from __future__ import annotations

import json
import time

from sqlalchemy import select
from werkzeug.test import Client

from hub import handlers
from hub.api.app import build_api
from hub.services import inventory, orders, picking
from hub.storage.tables import Shipment, utcnow
from sandbox.local_delivery import RIDER


def push(flow, order_id: str, push_type: str = "order"):
    sim = flow.sandbox.meituan
    params = sim.push_params(flow.ctx.connectors.channel("meituan").push_url, order_id, push_type)
    return Client(build_api(flow.ctx)).post("/callbacks/meituan", data=params)


def rider(flow, order_id: str, code: int, **kw):
    """The platform's rider moved: its signed logistics push, posted to the hub's callback."""
    sim = flow.sandbox.meituan
    params = sim.rider_params(flow.ctx.connectors.channel("meituan").push_url, order_id, code, **kw)
    return Client(build_api(flow.ctx)).post("/callbacks/meituan", data=params)


def taken(flow, external_id: str):
    with flow.ctx.uow() as uow:
        order = orders.find_by_idempotency(uow, "meituan", f"meituan:{external_id}")
        assert order is not None
        uow.session.expunge(order)
        return order


def the_shipment(flow, order_id: str) -> Shipment:
    with flow.ctx.uow() as uow:
        row = uow.session.execute(select(Shipment).where(Shipment.order_id == order_id)).scalar_one()
        uow.session.expunge(row)
        return row


def level(flow, sku: str = "TEA-001", store: str = "S001") -> tuple[int, int]:
    with flow.ctx.uow() as uow:
        held = inventory.stock_at(uow.session, flow.ctx.config, sku, store)
        return held.on_hand, held.reserved


def pick(flow, order_id: str) -> None:
    with flow.ctx.uow() as uow:
        picking.complete(uow, "S001", order_id, [], "Wang", utcnow())
        uow.commit()


def test_a_platform_order_is_picked_handed_to_the_platforms_rider_and_delivered_by_its_reports(flow):
    mt = flow.sandbox.meituan
    mt.seed_order("6001", [("TEA-001", 2, 1200)], "S001", status=2, pick_type=0, logistics_code="1001")
    assert push(flow, "6001").status_code == 200
    order = taken(flow, "6001")
    assert (order.status, order.fulfillment_type, order.rider, order.location_id) == \
        ("allocated", "delivery", "platform", "S001")
    flow.deliver(handlers.CHANNEL_ORDER_PROGRESS, "order.status_changed", order_id=order.id, to="allocated")
    # S001 books its couriers at payment; the platform's rider is asked for once the pick is complete
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="allocated")
    assert ("logistics_push", "6001") not in mt.calls and order.id not in flow.sandbox.local_delivery.deliveries
    pick(flow, order.id)
    flow.deliver(handlers.CHANNEL_ORDER_PROGRESS, "order.status_changed", order_id=order.id, to="picked")
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="picked")
    assert mt.calls == [("confirm", "6001"), ("picked", "6001"), ("logistics_push", "6001")]
    assert order.id not in flow.sandbox.local_delivery.deliveries         # no courier of the store's booked
    shipment = the_shipment(flow, order.id)
    assert (shipment.carrier, shipment.shipment_ref, shipment.active) == ("meituan", "6001", True)
    assert flow.order(order.id).status == "dispatched"

    t0 = int(time.time()) - 1800
    assert rider(flow, "6001", 10, at=t0).json == {"data": "ok"}            # 骑手接单
    assert flow.order(order.id).status == "rider_assigned"
    assert the_shipment(flow, order.id).rider_name == "张师傅"
    assert rider(flow, "6001", 20, at=t0 + 300).status_code == 200                # 骑手已取货
    assert flow.order(order.id).status == "picked_up" and level(flow) == (8, 0)   # the goods left
    assert rider(flow, "6001", 20, at=t0 + 300).status_code == 200                # the same push again
    assert rider(flow, "6001", 40, at=t0 + 900).status_code == 200                # 骑手已送达
    with flow.ctx.uow() as uow:
        final = orders.get(uow, order.id)
        steps = [t.to_status for t in sorted(final.transitions, key=lambda t: t.id)]
        assert final.status == "completed"
    assert steps[-4:] == ["rider_assigned", "picked_up", "delivered", "completed"]
    assert flow.events("shipment.changed") == []          # the platform's own rider: nothing to tell it back
    assert mt.rider_syncs == []


def test_a_bad_signature_on_a_rider_push_moves_nothing(flow):
    mt = flow.sandbox.meituan
    mt.seed_order("6003", [("TEA-001", 1, 1200)], "S001", status=2, pick_type=0, logistics_code="1001")
    assert push(flow, "6003").status_code == 200
    order = taken(flow, "6003")
    pick(flow, order.id)
    flow.deliver(handlers.CHANNEL_ORDER_PROGRESS, "order.status_changed", order_id=order.id, to="allocated")
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="picked")
    params = {**mt.rider_params(flow.ctx.connectors.channel("meituan").push_url, "6003", 40), "sig": "0" * 32}
    r = Client(build_api(flow.ctx)).post("/callbacks/meituan", data=params)
    assert r.status_code == 401 and flow.order(order.id).status == "dispatched"


def test_the_stores_courier_delivers_and_the_platform_is_told_each_real_change(flow):
    mt, dada = flow.sandbox.meituan, flow.sandbox.local_delivery
    mt.seed_order("6002", [("TEA-001", 1, 1200)], "S001", status=2, pick_type=0, logistics_code="0000")
    assert push(flow, "6002").status_code == 200
    order = taken(flow, "6002")
    assert order.rider is None                                            # 商家自配送: the store's courier
    flow.deliver(handlers.CHANNEL_ORDER_PROGRESS, "order.status_changed", order_id=order.id, to="allocated")
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="allocated")
    assert dada.deliveries[order.id].booked and ("logistics_push", "6002") not in mt.calls
    api = Client(build_api(flow.ctx))

    def dada_reports(status: int) -> list[str]:
        """Dada's callback, as it would arrive; then what the rider sync consumer did with each change."""
        for callback in dada.advance(order.id, status):
            r = api.post("/callbacks/local_delivery", data=json.dumps(callback.body),
                         headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.get_data()
        return [o.status for o in flow.deliver(handlers.RIDER_TO_CHANNEL, "shipment.changed", order_id=order.id)]

    assert dada_reports(2) == ["applied"]                                 # 待取货: a rider took it
    assert dada_reports(2) == ["duplicate"]                               # the same again: no change to tell
    pick(flow, order.id)
    assert dada_reports(3) == ["duplicate", "applied"]                    # 配送中: he has the goods
    assert dada_reports(4) == ["duplicate", "duplicate", "applied"]       # 已完成
    assert flow.order(order.id).status == "completed"
    changes = flow.events("shipment.changed", order_id=order.id)
    assert [c["data"]["status"] for c in changes] == ["rider_assigned", "collected", "delivered"]
    # each told once, in order, as the platform's own codes, with the rider and his position (GCJ-02)
    assert [(s["order_id"], s["logistics_status"]) for s in mt.rider_syncs] == [
        ("6002", "10"), ("6002", "20"), ("6002", "40")]
    first = mt.rider_syncs[0]
    assert (first["courier_name"], first["courier_phone"]) == (RIDER["dm_name"], RIDER["dm_mobile"])
    assert (first["latitude"], first["longitude"]) == ("31.229100", "121.448400")
    assert first["third_carrier_order_id"] == dada.deliveries[order.id].delivery_no


def test_a_rider_change_delivered_late_is_not_told_over_a_newer_one(flow):
    mt, dada = flow.sandbox.meituan, flow.sandbox.local_delivery
    mt.seed_order("6004", [("TEA-001", 1, 1200)], "S001", status=2, pick_type=0, logistics_code="0000")
    assert push(flow, "6004").status_code == 200
    order = taken(flow, "6004")
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="allocated")
    api = Client(build_api(flow.ctx))
    for status in (2, 3):
        for callback in dada.advance(order.id, status):
            assert api.post("/callbacks/local_delivery", data=json.dumps(callback.body),
                            headers={"Content-Type": "application/json"}).status_code == 200
    flow.deliver(handlers.RIDER_TO_CHANNEL, "shipment.changed", order_id=order.id)   # both, the older first
    assert [s["logistics_status"] for s in mt.rider_syncs] == ["20"]


def test_the_platform_cancelling_an_order_its_rider_has_cancels_it_here_with_nothing_owed(flow):
    mt = flow.sandbox.meituan
    mt.seed_order("6005", [("TEA-001", 2, 1200)], "S001", status=2, pick_type=0, logistics_code="1001")
    assert push(flow, "6005").status_code == 200
    order = taken(flow, "6005")
    flow.deliver(handlers.CHANNEL_ORDER_PROGRESS, "order.status_changed", order_id=order.id, to="allocated")
    pick(flow, order.id)
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="picked")
    assert flow.order(order.id).status == "dispatched"
    mt.set_status("6005", 9)                                              # the platform cancels it
    assert push(flow, "6005", "cancel").status_code == 200
    assert flow.order(order.id).status == "cancel_requested"              # a rider holds it: asked first
    [outcome] = flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id,
                             to="cancel_requested")
    assert outcome.status == "applied" and flow.order(order.id).status == "cancelled"
    assert level(flow) == (10, 0) and not the_shipment(flow, order.id).active
    assert flow.events("order.refund_due") == []                          # the platform gives its money back
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="cancelled")


def test_the_platforms_rider_cancelling_hands_the_order_to_the_platform_again(flow):
    mt = flow.sandbox.meituan
    mt.seed_order("6006", [("TEA-001", 1, 1200)], "S001", status=2, pick_type=0, logistics_code="1002")
    assert push(flow, "6006").status_code == 200
    order = taken(flow, "6006")
    flow.deliver(handlers.CHANNEL_ORDER_PROGRESS, "order.status_changed", order_id=order.id, to="allocated")
    pick(flow, order.id)
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="picked")
    t0 = int(time.time()) - 600
    assert rider(flow, "6006", 10, at=t0).status_code == 200
    assert rider(flow, "6006", 100, at=t0 + 60).status_code == 200                 # 配送单已取消
    assert flow.order(order.id).status == "allocated" and level(flow) == (10, 1)   # the stock still held
    [again] = flow.deliver(handlers.REBOOK_COURIER, "shipment.rebook_needed", order_id=order.id)
    assert again.status == "applied" and flow.order(order.id).status == "dispatched"
    shipment = the_shipment(flow, order.id)                                       # the same, active again
    assert (shipment.carrier, shipment.active, shipment.status) == ("meituan", True, "booked")
    assert rider(flow, "6006", 10, at=t0 + 120, name="李师傅").status_code == 200
    assert flow.order(order.id).status == "rider_assigned" and the_shipment(flow, order.id).rider_name == "李师傅"


def test_the_buyers_timeline_keeps_the_platforms_order_number_its_rider_is_booked_under(flow):
    """The platform's rider's shipment ref is the platform's order id; the buyer's timeline takes booking numbers
    out, and took that one out of every step too ("payment meituan:")."""
    mt = flow.sandbox.meituan
    mt.seed_order("6009", [("TEA-001", 1, 1200)], "S001", status=2, pick_type=0, logistics_code="1001")
    assert push(flow, "6009").status_code == 200
    order = taken(flow, "6009")
    flow.deliver(handlers.CHANNEL_ORDER_PROGRESS, "order.status_changed", order_id=order.id, to="allocated")
    pick(flow, order.id)
    flow.deliver(handlers.CHANNEL_ORDER_PROGRESS, "order.status_changed", order_id=order.id, to="picked")
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="picked")
    assert the_shipment(flow, order.id).shipment_ref == "6009"
    key = flow.ctx.config.known_channel("meituan").key
    shown = Client(build_api(flow.ctx)).get(f"/api/v1/orders/{order.id}", headers={"Authorization": f"Bearer {key}"})
    paid = next(e for e in shown.json["timeline"] if e["status"] == "paid")
    assert paid["detail"] == "payment meituan:6009"


def test_a_rider_push_for_an_order_the_stores_courier_carries_is_a_terminal_422_changing_nothing(flow):
    mt = flow.sandbox.meituan
    mt.seed_order("6006", [("TEA-001", 1, 1200)], "S001", status=2, pick_type=0, logistics_code="0000")
    assert push(flow, "6006").status_code == 200
    order = taken(flow, "6006")
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order.id, to="allocated")
    before, status = the_shipment(flow, order.id), flow.order(order.id).status
    params = mt.push_params(flow.ctx.connectors.channel("meituan").push_url, "6006", "logistics",
                            logistics_status=20, dispatcher_name="张师傅", dispatcher_mobile="13700001111",
                            time=int(time.time()))
    r = Client(build_api(flow.ctx)).post("/callbacks/meituan", data=params)
    assert r.status_code == 422 and r.get_json()["error"] == "not_platform_rider", r.get_data()
    after = the_shipment(flow, order.id)
    assert (after.carrier, after.status, after.last_event_at) == (before.carrier, before.status, before.last_event_at)
    assert flow.order(order.id).status == status
    mt.seed_order("6007", [("TEA-001", 1, 1200)], "S001", status=2, pick_type=0, logistics_code="0000")
    params = mt.push_params(flow.ctx.connectors.channel("meituan").push_url, "6007", "logistics",
                            logistics_status=20, time=int(time.time()))
    assert Client(build_api(flow.ctx)).post("/callbacks/meituan", data=params).status_code == 404   # not taken yet

"""Issue 10: courier callbacks are claims (confirmed with the courier's query API), re-bookings are
capped, a booking the courier already holds is adopted, a buyer's cancel races the rider
(`cancel_requested`), and a failed delivery comes back to the store (`returning` -> `returned`).

Callbacks reach the hub's real `/callbacks/local_delivery` (the WSGI app over the flow's database);
the Dada simulator answers the hub's quotes, bookings, cancels and status queries over loopback."""
from __future__ import annotations

import json
import time

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from werkzeug.test import Client

from hub import consumers, handlers
from hub.api.app import build_api, build_deps
from hub.metrics import METRICS, HubMetrics
from hub.services import inventory, orders
from hub.storage.tables import ErpFeedEntry, Shipment, TrackingEventRow, utcnow
from sandbox.local_delivery import callback_signature

from .conftest import NEAR_S001
from .test_couriers import dispatched_delivery, shipments

pytestmark = pytest.mark.usefixtures("sandbox")
SKU, STORE = "POT-003", "S001"


def hub_http(flow) -> Client:
    return Client(build_api(flow.ctx, build_deps(flow.ctx, metrics=HubMetrics(CollectorRegistry()))))


def post(flow, body: dict):
    return hub_http(flow).post("/callbacks/local_delivery", data=json.dumps(body, ensure_ascii=False).encode())


def genuine(flow, order_id: str, status: int, **extra) -> dict:
    """Dada moves the delivery and calls back; the hub receives exactly what it sent."""
    [callback] = flow.sandbox.local_delivery.advance(order_id, status, **extra)
    return callback.body


def forged(flow, order_id: str, status: int, *, names_order: str | None = None, update_time: int | None = None,
           ref: str | None = None) -> dict:
    """A callback anyone can make: the signature is an md5 of public fields."""
    ref = ref or flow.sandbox.local_delivery.deliveries[order_id].delivery_no
    oid, t = names_order or order_id, update_time or int(time.time()) + 1
    return {"client_id": ref, "order_id": oid, "order_status": status, "cancel_reason": "", "cancel_from": 0,
            "update_time": t, "signature": callback_signature(ref, oid, t), "dm_id": 9, "dm_name": "假骑士",
            "dm_mobile": "13000000000"}


def level(flow, sku: str = SKU, loc: str = STORE) -> inventory.LocationStock:
    with flow.ctx.uow() as uow:
        return inventory.stock_at(uow.session, flow.ctx.config, sku, loc)


def refunds(flow, order_id: str) -> list[dict]:
    return [e["data"] for e in flow.events("order.refund_due", order_id=order_id)]


def claims(outcome: str) -> float:
    return METRICS.registry.get_sample_value("hub_courier_claims_total",
                                             {"system": "local_delivery", "outcome": outcome}) or 0


# -- finding 1: forged callbacks ---------------------------------------------------------------------

def test_forged_cancelled_callbacks_book_no_second_rider(flow):
    order_id = dispatched_delivery(flow)
    post(flow, genuine(flow, order_id, 2))
    contradicted = claims("contradicted")
    for i in range(3):                                   # three forgeries used to send four riders
        r = post(flow, forged(flow, order_id, 5, update_time=int(time.time()) + 10 + i))
        assert r.status_code == 200, r.json              # answered, applied as what Dada says: rider_assigned
    assert flow.order(order_id).status == "rider_assigned"
    assert flow.events("shipment.rebook_needed") == []
    [shipment] = shipments(flow, order_id)
    assert shipment.active and flow.sandbox.local_delivery.status_of(order_id) == 2
    assert len(flow.sandbox.local_delivery.requests_to("/api/order/addAfterQuery")) == 1
    assert claims("contradicted") == contradicted + 3


def test_forged_delivered_moves_nothing_and_its_future_time_freezes_nothing(flow):
    order_id = dispatched_delivery(flow)
    before = level(flow)
    in_ten_years = int(time.time()) + 10 * 365 * 86400
    r = post(flow, forged(flow, order_id, 4, update_time=in_ten_years))
    assert r.status_code == 200
    order = flow.order(order_id)
    assert order.status == "dispatched"
    assert (level(flow).on_hand, level(flow).reserved) == (before.on_hand, before.reserved)   # nothing committed
    with flow.ctx.uow() as uow:
        assert uow.session.execute(select(func.count()).select_from(ErpFeedEntry)).scalar_one() == 0
        recorded = uow.session.execute(select(TrackingEventRow.at)).scalars().all()
    assert all(at.replace(tzinfo=None) <= utcnow().replace(tzinfo=None) for at in recorded)   # capped at now
    # The genuine reports that follow still move the order: the forged time froze nothing.
    post(flow, genuine(flow, order_id, 2))
    post(flow, genuine(flow, order_id, 3))
    assert flow.order(order_id).status == "picked_up" and level(flow).on_hand == before.on_hand - 1


def test_callback_naming_another_order_is_refused_and_records_nothing(flow):
    first = dispatched_delivery(flow)
    second = flow.place("delivery", [(SKU, 1, 36000)], address=NEAR_S001, key="second")
    flow.pay(second)
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=second, to="allocated")
    ref = flow.sandbox.local_delivery.deliveries[first].delivery_no
    r = post(flow, forged(flow, first, 4, names_order=second, ref=ref))
    assert r.status_code == 422 and r.json["error"] == "callback_mismatch"
    assert first not in r.json["message"]                 # never says whose booking it is
    with flow.ctx.uow() as uow:
        assert uow.session.execute(select(func.count()).select_from(TrackingEventRow)).scalar_one() == 0
    assert (flow.order(first).status, flow.order(second).status) == ("dispatched", "dispatched")


def test_rebooking_stops_at_the_cap_and_parks_the_order_for_an_operator(flow):
    order_id = dispatched_delivery(flow)
    dada = flow.sandbox.local_delivery
    cap = flow.ctx.config.hub.max_courier_bookings
    assert cap == 3
    for n in range(cap):                                 # every rider really gives up
        post(flow, genuine(flow, order_id, 2))
        post(flow, genuine(flow, order_id, 5, cancel_reason="骑士取消订单", cancel_from=1))
        assert flow.order(order_id).status == "allocated"
        outcomes = flow.deliver(handlers.REBOOK_COURIER, "shipment.rebook_needed", order_id=order_id)
        if n < cap - 1:
            assert flow.order(order_id).status == "dispatched", n
    assert outcomes[-1].status == "parked" and "hub.max_courier_bookings" in outcomes[-1].error
    assert len(dada.requests_to("/api/order/addAfterQuery")) == cap            # never a fourth rider
    assert flow.order(order_id).status == "allocated" and level(flow).reserved == 1   # still held, for the operator
    [letter] = [d for d in consumers.dead_letters(flow.ctx) if d.payload["data"]["order_id"] == order_id]
    assert letter.target == handlers.REBOOK_COURIER.name and "NeedsOperator" in letter.error


def test_re_booked_riders_upload_the_shipping_info_once_per_payment(flow):
    """Each re-booked rider re-uploaded same-city shipping info; WeChat allows one re-upload per payment
    (每笔支付单仅有一次重新发货机会, the simulator enforces it), so the third booking's upload was refused
    and parked."""
    order_id = dispatched_delivery(flow)
    for _ in range(2):                                   # two riders give up: three bookings in all
        post(flow, genuine(flow, order_id, 2))
        post(flow, genuine(flow, order_id, 5, cancel_reason="骑士取消订单", cancel_from=1))
        flow.deliver(handlers.REBOOK_COURIER, "shipment.rebook_needed", order_id=order_id)
        assert flow.order(order_id).status == "dispatched"
    uploads = flow.deliver(handlers.SHIPPING_INFO_UPLOAD, "order.status_changed", order_id=order_id, to="dispatched")
    assert [o.status for o in uploads] == ["applied"] * 3, [o.error for o in uploads]
    pay = flow.sandbox.wechat_pay
    assert [u["logistics_type"] for u in pay.shipping_uploads] == [2]       # told once: nothing changed since
    assert len(pay.requests_to("/wxa/sec/order/upload_shipping_info")) == 1
    assert [d for d in consumers.dead_letters(flow.ctx) if d.target == handlers.SHIPPING_INFO_UPLOAD.name] == []


# -- booking: ask first, adopt what the courier holds ------------------------------------------------

def test_a_booking_the_courier_already_holds_is_adopted_not_booked_again(flow):
    order_id = flow.place("delivery", [(SKU, 1, 36000)], address=NEAR_S001)
    flow.pay(order_id)
    # What a crash between booking and recording leaves: the quote written down, booked at Dada.
    with flow.ctx.uow() as uow:
        uow.session.add(Shipment(order_id=order_id, kind="local", carrier="local_delivery", shipment_ref="Dada-CRASH",
                                 status="quoted", fee_fen=600, active=False))
        uow.commit()
    flow.sandbox.local_delivery.seed_booking(order_id, "Dada-CRASH", status=2)
    [outcome] = flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="allocated")
    assert outcome.status == "applied"
    [shipment] = shipments(flow, order_id)
    assert (shipment.shipment_ref, shipment.active) == ("Dada-CRASH", True)
    assert flow.order(order_id).status == "rider_assigned"          # and on to what Dada says of it
    assert flow.sandbox.local_delivery.requests_to("/api/order/queryDeliverFee") == []


def test_a_live_booking_the_hub_never_quoted_is_parked_not_doubled(flow):
    order_id = flow.place("delivery", [(SKU, 1, 36000)], address=NEAR_S001)
    flow.pay(order_id)
    flow.sandbox.local_delivery.seed_booking(order_id, "Dada-ELSEWHERE", status=1)
    [outcome] = flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="allocated")
    assert outcome.status == "parked" and "never quoted" in outcome.error
    assert flow.sandbox.local_delivery.requests_to("/api/order/addAfterQuery") == []
    assert flow.order(order_id).status == "allocated"


def test_courier_down_while_booking_is_retried_then_parked(flow):
    order_id = flow.place("delivery", [(SKU, 1, 36000)], address=NEAR_S001)
    flow.pay(order_id)
    dada = flow.sandbox.local_delivery
    dada.faults.error_rate, dada.faults.error_status = 1.0, 503
    try:
        [outcome] = flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id,
                                 to="allocated")
    finally:
        dada.faults.error_rate = 0.0
    assert outcome.status == "parked" and "503" in outcome.error
    assert dada.requests_to("/api/order/queryDeliverFee") == []      # "down" was never taken for "no booking"


# -- finding 2: the buyer's cancel races the rider ----------------------------------------------------

def cancel(flow, order_id: str):
    key = flow.ctx.config.channel("miniprogram").key
    return hub_http(flow).post(f"/api/v1/orders/{order_id}/cancel", json={"reason": "changed my mind"},
                               headers={"Authorization": f"Bearer {key}"})


def test_cancel_refused_by_the_courier_keeps_the_stock_out_and_the_delivery_going(flow):
    order_id = dispatched_delivery(flow)
    post(flow, genuine(flow, order_id, 2))
    before = level(flow)
    flow.sandbox.local_delivery.advance(order_id, 3)      # the rider took the goods; his callback is late
    r = cancel(flow, order_id)
    assert r.status_code == 202 and r.json["status"] == "cancel_requested"
    assert (level(flow).on_hand, level(flow).reserved) == (before.on_hand, before.reserved)   # nothing moved yet
    refused = METRICS.registry.get_sample_value("hub_cancel_requests_total", {"outcome": "refused"}) or 0
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="cancel_requested")
    order = flow.order(order_id)
    assert order.status == "picked_up"                    # Dada: 2050 in delivery; the order goes on
    assert level(flow).on_hand == before.on_hand - 1 and level(flow).reserved == before.reserved - 1
    assert refunds(flow, order_id) == []
    assert METRICS.registry.get_sample_value("hub_cancel_requests_total", {"outcome": "refused"}) == refused + 1
    with flow.ctx.uow() as uow:                           # operations read why in the order's history
        details = [t.detail or "" for t in orders.get(uow, order_id).transitions]
    assert any("cancel refused" in d and "2050" in d for d in details)


def test_cancel_accepted_by_the_courier_releases_the_stock_and_owes_the_refund(flow):
    order_id = dispatched_delivery(flow)
    post(flow, genuine(flow, order_id, 2))
    before = level(flow)
    assert cancel(flow, order_id).status_code == 202
    assert level(flow).reserved == before.reserved        # held until the courier answers
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="cancel_requested")
    assert flow.order(order_id).status == "cancelled"
    assert flow.sandbox.local_delivery.status_of(order_id) == 5
    assert (level(flow).on_hand, level(flow).reserved) == (before.on_hand, before.reserved - 1)
    [due] = refunds(flow, order_id)
    assert due["payment_ref"] == f"4200{order_id}" and "cancel accepted" in due["reason"]
    [shipment] = shipments(flow, order_id)
    assert (shipment.active, shipment.status) == (False, "cancelled")
    # The courier's own callback for the cancel arrives after: nothing more happens.
    post(flow, flow.sandbox.local_delivery.callbacks[-1].body)
    assert flow.order(order_id).status == "cancelled" and len(refunds(flow, order_id)) == 1


def test_a_cancel_before_any_rider_is_booked_is_immediate(flow):
    order_id = flow.place("delivery", [(SKU, 1, 36000)], address=NEAR_S001)
    flow.pay(order_id)
    r = cancel(flow, order_id)
    assert r.status_code == 200 and r.json["status"] == "cancelled"


def test_a_cancel_once_the_rider_has_the_goods_is_refused(flow):
    order_id = dispatched_delivery(flow)
    post(flow, genuine(flow, order_id, 2))
    post(flow, genuine(flow, order_id, 3))
    r = cancel(flow, order_id)
    assert r.status_code == 409 and flow.order(order_id).status == "picked_up"


# -- finding 5: a failed delivery comes back -----------------------------------------------------------

def test_failed_delivery_returns_the_goods_to_the_store_and_owes_the_refund(flow):
    order_id = dispatched_delivery(flow)
    start = level(flow)
    for status in (2, 100, 3):
        post(flow, genuine(flow, order_id, status))
    assert flow.order(order_id).status == "picked_up" and level(flow).on_hand == start.on_hand - 1
    post(flow, genuine(flow, order_id, 9))
    assert flow.order(order_id).status == "returning"
    r = cancel(flow, order_id)                            # the buyer is not stuck with a 409
    assert r.status_code == 202 and r.json["status"] == "returning"
    assert refunds(flow, order_id) == []
    post(flow, genuine(flow, order_id, 10))
    assert flow.order(order_id).status == "returned"
    assert (level(flow).on_hand, level(flow).reserved) == (start.on_hand, start.reserved - 1)   # back on the shelf
    [due] = refunds(flow, order_id)
    assert due["payment_ref"] == f"4200{order_id}" and "delivery failed" in due["reason"]
    post(flow, flow.sandbox.local_delivery.callbacks[-1].body)   # Dada repeats itself: nothing twice
    assert level(flow).on_hand == start.on_hand and len(refunds(flow, order_id)) == 1
    assert cancel(flow, order_id).status_code == 200

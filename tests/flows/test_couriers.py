"""Flow 3: a local rider booked, re-booked after the courier gives up, cancelled with the
order; express from the warehouse when no store can serve."""
from __future__ import annotations

import json

from sqlalchemy import select
from werkzeug.test import Client

from hub import handlers
from hub.api.app import build_api
from hub.services import money_owed, orders, payments
from hub.services import tracking as fulfilment
from hub.storage.tables import Reservation, Shipment, StockLevel

from .conftest import HANGZHOU, NEAR_S001


def shipments(flow, order_id: str) -> list[Shipment]:
    with flow.ctx.uow() as uow:
        rows = list(uow.session.execute(select(Shipment).where(Shipment.order_id == order_id)
                                        .order_by(Shipment.id)).scalars())
        uow.session.expunge_all()
        return rows


def dispatched_delivery(flow) -> str:
    order_id = flow.place("delivery", [("POT-003", 1, 36000)], address=NEAR_S001)
    flow.pay(order_id)
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="allocated")
    return order_id


def test_delivery_is_quoted_booked_dispatched_and_uploaded_as_same_city(flow):
    order_id = dispatched_delivery(flow)
    dada = flow.sandbox.local_delivery

    [shipment] = shipments(flow, order_id)
    assert (shipment.kind, shipment.carrier, shipment.active) == ("local", "local_delivery", True)
    assert shipment.shipment_ref == dada.deliveries[order_id].delivery_no and dada.deliveries[order_id].booked
    assert shipment.fee_fen == 600                                       # within 3 km: the base fee
    assert dada.deliveries[order_id].callback == "http://127.0.0.1:8000/callbacks/local_delivery"
    assert flow.order(order_id).status == "dispatched"

    flow.deliver(handlers.SHIPPING_INFO_UPLOAD, "order.status_changed", order_id=order_id, to="dispatched")
    [upload] = flow.sandbox.wechat_pay.shipping_uploads
    assert upload["logistics_type"] == 2


def test_courier_cancel_rebooks_once_and_old_booking_goes_inactive(flow):
    order_id = dispatched_delivery(flow)
    dada = flow.sandbox.local_delivery
    first_ref = dada.deliveries[order_id].delivery_no
    # The rider gives up; the courier's callback (its body, as it would arrive) reaches the hub.
    [callback] = dada.advance(order_id, 5, cancel_reason="骑士取消订单", cancel_from=1)
    event = flow.ctx.connectors["local_delivery"].parse_callback(json.dumps(callback.body).encode())
    with flow.ctx.uow() as uow:
        fulfilment.apply_tracking(uow, flow.ctx.config, event)
        uow.commit()
    assert flow.order(order_id).status == "allocated"

    rebook = flow.deliver(handlers.REBOOK_COURIER, "shipment.rebook_needed", order_id=order_id)
    again = flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="allocated")

    assert rebook[0].status == "applied" and [o.status for o in again] == ["duplicate", "applied"]
    old, new = shipments(flow, order_id)
    assert (old.shipment_ref, old.active) == (first_ref, False)
    assert new.active and new.shipment_ref == dada.deliveries[order_id].delivery_no != first_ref
    assert dada.deliveries[order_id].booked and flow.order(order_id).status == "dispatched"


def test_cancelling_the_order_cancels_the_booking_and_refunds_the_payment(flow):
    order_id = dispatched_delivery(flow)
    with flow.ctx.uow() as uow:          # a rider is booked: the cancel is a request the courier answers
        orders.cancel(uow, orders.get(uow, order_id, lock=True), "miniprogram", "buyer cancelled")
        uow.commit()
    assert flow.order(order_id).status == "cancel_requested"

    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="cancel_requested")
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="cancelled")
    flow.deliver(handlers.ASK_FOR_REFUND, "order.refund_due", order_id=order_id)

    assert flow.sandbox.local_delivery.status_of(order_id) == 5 and flow.order(order_id).status == "cancelled"
    [shipment] = shipments(flow, order_id)
    assert (shipment.active, shipment.status) == (False, "cancelled")
    [refund] = flow.sandbox.wechat_pay.refunds.values()          # asked of the payment platform, in full
    assert (refund.order_ref, refund.amount_fen) == (order_id, flow.order(order_id).total_fen)
    assert flow.order(order_id).status == "cancelled"              # refunded only on the platform's word
    assert flow.platform_notifies() == [200]
    assert flow.order(order_id).status == "refunded"


def test_express_gets_a_waybill_a_subscription_ships_and_commits_the_stock(flow):
    order_id = flow.place("express", [("SET-004", 3, 19900)], address=HANGZHOU)
    tx = flow.pay(order_id)
    assert flow.order(order_id).location_id == "WH01"

    flow.deliver(handlers.EXPRESS_WAYBILL, "order.status_changed", order_id=order_id, to="allocated")
    flow.deliver(handlers.SHIPPING_INFO_UPLOAD, "order.status_changed", order_id=order_id, to="shipped")

    express = flow.sandbox.express
    waybill = express.orders[order_id]
    assert express.subscriptions[waybill].callback_url == "http://127.0.0.1:8000/callbacks/express"
    [shipment] = shipments(flow, order_id)
    assert (shipment.kind, shipment.carrier, shipment.shipment_ref) == ("express", "express", waybill)
    assert flow.order(order_id).status == "shipped"
    with flow.ctx.uow() as uow:
        level = uow.session.get(StockLevel, ("SET-004", "WH01"))
        assert (level.on_hand, level.reserved) == (7, 0)
        assert {r.status for r in uow.session.execute(
            select(Reservation).where(Reservation.order_id == order_id)).scalars()} == {"committed"}
    [upload] = flow.sandbox.wechat_pay.shipping_uploads
    assert upload["logistics_type"] == 1 and upload["order_key"]["transaction_id"] == tx
    assert upload["shipping_list"][0]["tracking_no"] == waybill
    # WeChat's own code for SF (not Kuaidi100's "shunfeng"), its masked contact, the notified payer.
    assert upload["shipping_list"][0]["express_company"] == "SF"
    assert upload["shipping_list"][0]["contact"] == {"receiver_contact": "137****7000"}
    assert upload["payer"] == {"openid": f"oPayer-{order_id}"}


def _refunds(flow, order_id: str) -> list[tuple[int, str, str]]:
    with flow.ctx.uow() as uow:
        return [(r.amount_fen, r.status, r.cause) for r in money_owed.of_order(uow, order_id)]


def _courier_lets_go(flow, order_id: str) -> None:
    """The hub asks the courier to cancel (the consumer of `cancel_requested`), and the courier agrees."""
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="cancel_requested")


def test_a_refund_at_the_payment_platform_while_a_rider_is_booked_asks_the_courier_to_cancel(flow):
    """Old code: the money was back but the order stayed `dispatched`, and the rider brought the goods."""
    order_id = dispatched_delivery(flow)
    total = flow.order(order_id).total_fen
    body = flow.sandbox.wechat_pay.notification_body(order_id, total, "REFUND.SUCCESS",
                                                     transaction_id=f"4200{order_id}")
    headers = {**flow.sandbox.wechat_pay.sign(body), "Content-Type": "application/json"}
    assert Client(build_api(flow.ctx)).post("/callbacks/wechat_pay", data=body, headers=headers).status_code == 200
    assert flow.order(order_id).status == "cancel_requested"
    _courier_lets_go(flow, order_id)
    assert flow.sandbox.local_delivery.status_of(order_id) == 5
    order = flow.order(order_id)
    assert order.status == "refunded" and _refunds(flow, order_id) == [(total, "success", "platform")]
    assert flow.events("order.refund_due", order_id=order_id) == []          # no second refund asked for
    with flow.ctx.uow() as uow:
        level = uow.session.get(StockLevel, ("POT-003", order.location_id))
        assert level.reserved == 0                                           # the reservation was released


def test_the_shops_own_refund_while_a_rider_is_booked_asks_the_courier_and_owes_nothing(flow):
    """Old code: IllegalTransition in the shop's sync consumer — retried, then parked for an operator."""
    order_id = dispatched_delivery(flow)
    total = flow.order(order_id).total_fen
    for _ in range(2):                                   # the shop's push, delivered twice
        with flow.ctx.uow() as uow:
            payments.refunded(uow, orders.get(uow, order_id, lock=True), "wechat_shop", "refunded in the shop")
            uow.commit()
    assert flow.order(order_id).status == "cancel_requested"
    assert _refunds(flow, order_id) == [(total, "success", "channel")]
    _courier_lets_go(flow, order_id)
    assert flow.order(order_id).status == "refunded"
    assert flow.events("order.refund_due", order_id=order_id) == []


def test_the_shops_refund_after_the_rider_took_the_goods_is_recorded_and_the_delivery_goes_on(flow):
    order_id = dispatched_delivery(flow)
    flow.move(order_id, "rider_assigned", "picked_up")
    with flow.ctx.uow() as uow:
        payments.refunded(uow, orders.get(uow, order_id, lock=True), "wechat_shop", "refunded in the shop")
        uow.commit()
    assert flow.order(order_id).status == "picked_up"
    assert _refunds(flow, order_id) == [(flow.order(order_id).total_fen, "success", "channel")]

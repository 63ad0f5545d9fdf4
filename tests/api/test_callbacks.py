"""/callbacks/{connector}: each system's own signature, then the core, once.

Payment notifications are signed and encrypted by the sandbox's WeChat Pay simulator;
courier callbacks are built and signed the way the sandbox couriers build them."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from connectors.base import MemoryBinder
from connectors.registry import build_connector
from hub.config import SystemConfig
from hub.domain.order_states import OrderStatus
from hub.services import money_owed, orders
from hub.storage.tables import OrderTransition, OutboxMessage, Shipment, TrackingEventRow
from sandbox.credentials import sandbox_env
from sandbox.express import k100_sign
from sandbox.local_delivery import callback_signature
from sandbox.wechat_pay import WeChatPaySimulator
from sandbox.wechat_shop import WeChatShopSimulator, seed_binder
from tests.api.conftest import OPS_KEY
from tests.support import CATALOG

CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def pay_sim():
    return WeChatPaySimulator.from_env(sandbox_env())     # signs and encrypts; no server needed


def transitions(api, oid: str) -> list[str]:
    with api.ctx.uow() as uow:
        return list(uow.session.execute(select(OrderTransition.to_status).where(OrderTransition.order_id == oid)
                                        .order_by(OrderTransition.id)).scalars())


def status(api, oid: str) -> str:
    return api.get(f"/api/v1/orders/{oid}").json["status"]


def notify(api, sim, body: bytes, headers=None):
    return api.client.post("/callbacks/wechat_pay", data=body, headers=headers or sim.sign(body))


# -- WeChat Pay ----------------------------------------------------------------------------------

def test_signed_payment_notification_marks_the_order_paid(api, pay_sim):
    api.stock(10)
    oid = api.order()
    r = notify(api, pay_sim, pay_sim.notification_body(oid, 25600, transaction_id="4200000001",
                                                      payer_openid="oPayer-From-WeChat"))
    assert r.status_code == 200 and r.json == {"code": "SUCCESS"}
    assert status(api, oid) == "allocated"
    assert transitions(api, oid) == ["pending_payment", "paid", "allocated"]
    with api.ctx.uow() as uow:          # kept for the shipping-info upload, which must name the payer
        assert orders.get(uow, oid).buyer["openid"] == "oPayer-From-WeChat"


def test_tampered_notification_is_401_and_changes_nothing(api, pay_sim):
    api.stock(10)
    oid = api.order()
    body = pay_sim.notification_body(oid, 25600)
    headers = pay_sim.sign(body)
    tampered = body.replace(b'"event_type": "TRANSACTION.SUCCESS"', b'"event_type": "TRANSACTION.SUCCESS" ')
    r = notify(api, pay_sim, tampered, headers)
    assert r.status_code == 401 and r.json["code"] == "FAIL" and r.json["error"] == "bad_signature"
    assert r.json["message"]
    r = notify(api, pay_sim, body, {**headers, "Wechatpay-Signature": "AAAA" + headers["Wechatpay-Signature"][4:]})
    assert r.status_code == 401
    assert status(api, oid) == "pending_payment" and transitions(api, oid) == ["pending_payment"]


def test_duplicate_notification_answers_success_with_one_effect(api, pay_sim):
    api.stock(10)
    oid = api.order()
    body = pay_sim.notification_body(oid, 25600, transaction_id="4200000007")
    first = notify(api, pay_sim, body)
    again = notify(api, pay_sim, body)              # WeChat re-sends, freshly signed
    assert (first.status_code, again.status_code) == (200, 200) and again.json == {"code": "SUCCESS"}
    assert transitions(api, oid) == ["pending_payment", "paid", "allocated"]


def test_wrong_amount_and_unknown_order_are_refused(api, pay_sim):
    api.stock(10)
    oid = api.order()
    r = notify(api, pay_sim, pay_sim.notification_body(oid, 1))
    assert r.status_code == 422 and r.json["code"] == "FAIL"
    r = notify(api, pay_sim, pay_sim.notification_body("O-NOPE", 1))
    assert r.status_code == 404 and r.json["code"] == "FAIL"
    assert status(api, oid) == "pending_payment"


def test_refund_notification_cancels_and_refunds_once(api, pay_sim):
    api.stock(10)
    oid = api.order()
    notify(api, pay_sim, pay_sim.notification_body(oid, 25600, transaction_id="4200000009"))
    body = pay_sim.notification_body(oid, 25600, "REFUND.SUCCESS", transaction_id="4200000009")
    assert notify(api, pay_sim, body).status_code == 200
    assert notify(api, pay_sim, body).status_code == 200
    assert transitions(api, oid)[-2:] == ["cancelled", "refunded"] and api.level().reserved == 0
    with api.ctx.uow() as uow:          # the platform already refunded: no second refund asked for
        types = uow.session.execute(select(OutboxMessage.event_type)).scalars().all()
    assert "order.refund_due" not in types


def test_a_partial_refund_notification_leaves_the_order_and_its_stock_alone(api, pay_sim):
    """100 fen back on a 25,600 fen order: recorded as a refund, the order keeps its status and stock."""
    api.stock(10)
    oid = api.order()
    notify(api, pay_sim, pay_sim.notification_body(oid, 25600, transaction_id="4200000010"))
    body = pay_sim.notification_body(oid, 25600, "REFUND.SUCCESS", transaction_id="4200000010", refund_fen=100)
    assert notify(api, pay_sim, body).status_code == 200
    assert notify(api, pay_sim, body).status_code == 200                     # re-sent: one refund
    assert status(api, oid) == "allocated" and transitions(api, oid) == ["pending_payment", "paid", "allocated"]
    assert (api.level().on_hand, api.level().reserved) == (10, 2)
    [refund] = api.get(f"/api/v1/orders/{oid}").json["refunds"]
    assert (refund["amount_fen"], refund["status"], refund["cause"]) == (100, "success", "platform")
    # The rest going back later (25,500 fen) completes it: then the order is refunded and its stock released.
    rest = pay_sim.notification_body(oid, 25600, "REFUND.SUCCESS", transaction_id="4200000010", refund_fen=25500,
                                     refund_no=f"R{oid}-REST")
    assert notify(api, pay_sim, rest).status_code == 200
    assert transitions(api, oid)[-2:] == ["cancelled", "refunded"] and api.level().reserved == 0


@pytest.mark.parametrize("event,shown", [("REFUND.ABNORMAL", "abnormal"), ("REFUND.CLOSED", "closed")])
def test_abnormal_and_closed_refund_notifications_are_answered_and_shown_to_operations(api, pay_sim, event,
                                                                                        shown):
    api.stock(10)
    oid = api.order()
    notify(api, pay_sim, pay_sim.notification_body(oid, 25600, transaction_id="4200000011"))
    body = pay_sim.notification_body(oid, 25600, event, transaction_id="4200000011", refund_no=f"R{oid}-1")
    r = notify(api, pay_sim, body)
    assert r.status_code == 200 and r.json == {"code": "SUCCESS"}     # not 422: WeChat would re-send it for a day
    assert status(api, oid) == "allocated"                             # no money went back: the order goes on
    [refund] = api.get(f"/api/v1/orders/{oid}").json["refunds"]
    assert (refund["refund_id"], refund["status"]) == (f"R{oid}-1", shown)
    listed = api.get("/admin/api/refunds", key=OPS_KEY).json["refunds"]
    assert [(x["order_id"], x["refund_id"], x["status"]) for x in listed] == [(oid, f"R{oid}-1", shown)]
    assert listed[0]["detail"]


def test_unknown_connector_is_404(api):
    for name in ("nope", "crm", "erp"):
        r = api.client.post(f"/callbacks/{name}", data=b"{}")
        assert r.status_code == 404 and r.json["error"] == "unknown_connector"


# -- couriers ------------------------------------------------------------------------------------

def booked_delivery(api, kind="delivery", ref="DADA-1", carrier="local_delivery") -> str:
    """A paid order whose courier booking the workers made (what they would write)."""
    api.stock(10)
    oid = api.order("c1", kind=kind)
    api.pay(oid)
    with api.ctx.uow() as uow:
        order = orders.get(uow, oid)
        target = OrderStatus.DISPATCHED if kind == "delivery" else OrderStatus.SHIPPED
        orders.transition(uow, order, target, "test", "booked")
        uow.session.add(Shipment(order_id=oid, kind="local" if kind == "delivery" else "express", carrier=carrier,
                                 shipment_ref=ref, status="booked"))
        uow.commit()
    return oid


def rider(sim, oid: str, *statuses: int, ref: str = "DADA-1") -> None:
    """Where the delivery really is, at the courier (what its status query answers)."""
    if oid not in sim.deliveries:
        sim.seed_booking(oid, ref, 1)
    for st in statuses:
        sim.advance(oid, st)


def dada(oid: str, status: int, update_time: int, ref: str = "DADA-1", **extra) -> bytes:
    rider = {"dm_id": 666, "dm_name": "张骑士", "dm_mobile": "13911112222"} if status not in (1, 7) else {}
    body = {"client_id": ref, "order_id": oid, "order_status": status, "cancel_reason": "", "cancel_from": 0,
            "update_time": update_time, "signature": callback_signature(ref, oid, update_time), **rider, **extra}
    return json.dumps(body, ensure_ascii=False).encode()


def test_rider_callbacks_move_the_order_to_completed_with_a_masked_timeline(api, courier):
    oid = booked_delivery(api)
    t = int(time.time())
    for i, st in enumerate((2, 100, 3, 4)):
        rider(courier, oid, st)
        r = api.client.post("/callbacks/local_delivery", data=dada(oid, st, t + i))
        assert r.status_code == 200 and r.json == {"code": 0, "msg": "success"}
    assert status(api, oid) == "completed"
    assert transitions(api, oid)[-4:] == ["rider_assigned", "picked_up", "delivered", "completed"]
    assert api.level().on_hand == 8 and api.level().reserved == 0
    timeline = api.get(f"/api/v1/orders/{oid}").json["timeline"]
    text = json.dumps(timeline, ensure_ascii=False)
    assert "139****2222" in text and "13911112222" not in text
    assert any(e["source"] == "local_delivery" and e["status"] == "rider_at_store" for e in timeline)
    feed = api.get("/api/v1/erp/orders", key="sandbox-erp-feed-key-0001").json["orders"]
    assert [o["order_id"] for o in feed] == [oid]


def test_duplicate_and_out_of_order_callbacks_never_regress(api, courier):
    oid = booked_delivery(api)
    t = int(time.time())
    rider(courier, oid, 2, 3)
    collected = dada(oid, 3, t + 2)
    assert api.client.post("/callbacks/local_delivery", data=collected).status_code == 200
    assert api.client.post("/callbacks/local_delivery", data=collected).status_code == 200   # duplicate
    late = api.client.post("/callbacks/local_delivery", data=dada(oid, 2, t + 1))           # older, late
    assert late.status_code == 200
    assert status(api, oid) == "picked_up"
    with api.ctx.uow() as uow:
        rows = uow.session.execute(select(func.count()).select_from(TrackingEventRow)).scalar_one()
    # The late one is contradicted by the courier's query (the rider has the goods): what the query
    # says is already recorded, so the timeline shows each step once.
    assert rows == 1
    assert transitions(api, oid).count("picked_up") == 1


def test_courier_cancel_sends_the_order_back_for_rebooking(api, courier):
    oid = booked_delivery(api)
    t = int(time.time())
    rider(courier, oid, 2)
    api.client.post("/callbacks/local_delivery", data=dada(oid, 2, t))
    rider(courier, oid, 5)
    r = api.client.post("/callbacks/local_delivery", data=dada(oid, 5, t + 1, cancel_reason="rider unavailable"))
    assert r.status_code == 200 and status(api, oid) == "allocated" and api.level().reserved == 2
    with api.ctx.uow() as uow:
        events = uow.session.execute(select(OutboxMessage.payload)
                                     .where(OutboxMessage.event_type == "shipment.rebook_needed")).scalars().all()
        assert uow.session.execute(select(Shipment.active)).scalar_one() is False
    assert [e["data"]["order_id"] for e in events] == [oid]
    # a late report from the dropped booking moves nothing
    api.client.post("/callbacks/local_delivery", data=dada(oid, 3, t + 2))
    assert status(api, oid) == "allocated"


def test_bad_courier_signature_is_401_and_unknown_booking_404(api, courier):
    oid = booked_delivery(api)
    body = json.loads(dada(oid, 2, int(time.time())))
    body["signature"] = "0" * 32
    r = api.client.post("/callbacks/local_delivery", data=json.dumps(body))
    assert r.status_code == 401 and r.json["error"] == "bad_signature"
    r = api.client.post("/callbacks/local_delivery", data=dada(oid, 2, int(time.time()), ref="DADA-UNKNOWN"))
    assert r.status_code == 404
    assert status(api, oid) == "dispatched"


def test_a_courier_that_cannot_confirm_is_502_so_it_calls_back_again(api, courier):
    oid = booked_delivery(api)
    rider(courier, oid, 2)
    courier.faults.fail_next, courier.faults.error_status = 2, 503      # the connector's two tries
    r = api.client.post("/callbacks/local_delivery", data=dada(oid, 2, int(time.time())))
    assert r.status_code == 502 and r.json["error"] == "upstream_failed"
    assert status(api, oid) == "dispatched"
    with api.ctx.uow() as uow:
        assert uow.session.execute(select(func.count()).select_from(TrackingEventRow)).scalar_one() == 0
    r = api.client.post("/callbacks/local_delivery", data=dada(oid, 2, int(time.time())))   # Dada's retry
    assert r.status_code == 200 and status(api, oid) == "rider_assigned"


def k100_form(waybill: str, steps: list[tuple[int, str, datetime]]) -> dict[str, str]:
    """A Kuaidi100 push: the whole history, newest first; `steps` are (state, status word, time)."""
    data = [{"time": at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"),
             "ftime": at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"), "context": f"step {word}",
             "status": word, "areaName": "上海"} for _, word, at in reversed(steps)]
    last = {"message": "ok", "state": str(steps[-1][0]), "status": "200", "condition": "F00",
            "ischeck": "1" if steps[-1][0] == 3 else "0", "com": "shunfeng", "nu": waybill, "data": data}
    param = json.dumps({"status": "polling", "billstatus": "got", "message": "", "lastResult": last},
                       ensure_ascii=False)
    return {"param": param, "sign": k100_sign(param, sandbox_env()["HUB_KUAIDI100_SALT"])}


def test_express_tracking_pushes_move_the_order_and_a_bad_sign_is_refused(api):
    oid = booked_delivery(api, kind="express", ref="SF100", carrier="express")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    steps = [(1, "揽收", t0), (0, "在途", t0 + timedelta(hours=1))]
    r = api.client.post("/callbacks/express", data=k100_form("SF100", steps))
    assert r.status_code == 200 and r.json["result"] is True
    assert status(api, oid) == "in_transit"
    bad = k100_form("SF100", steps + [(3, "签收", t0 + timedelta(hours=2))])
    bad["sign"] = "0" * 32
    r = api.client.post("/callbacks/express", data=bad)
    assert r.status_code == 401 and r.json["result"] is False and status(api, oid) == "in_transit"
    steps.append((3, "签收", t0 + timedelta(hours=2)))
    assert api.client.post("/callbacks/express", data=k100_form("SF100", steps)).status_code == 200
    assert status(api, oid) == "completed"
    assert transitions(api, oid)[-3:] == ["in_transit", "delivered", "completed"]


def test_express_parcel_sent_back_returns_to_the_warehouse_with_the_refund_due(api):
    oid = booked_delivery(api, kind="express", ref="SF200", carrier="express")
    wh = api.level("WH01")                                  # shipped: the 2 units already left
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    steps = [(1, "揽收", t0), (0, "在途", t0 + timedelta(hours=1)), (6, "退回", t0 + timedelta(hours=2))]
    assert api.client.post("/callbacks/express", data=k100_form("SF200", steps)).status_code == 200
    assert status(api, oid) == "returning" and api.level("WH01").on_hand == wh.on_hand
    steps.append((4, "退签", t0 + timedelta(hours=3)))
    assert api.client.post("/callbacks/express", data=k100_form("SF200", steps)).status_code == 200
    assert status(api, oid) == "returned"
    assert (api.level("WH01").on_hand, api.level("WH01").reserved) == (wh.on_hand + 2, wh.reserved)
    with api.ctx.uow() as uow:
        due = uow.session.execute(select(OutboxMessage.payload)
                                  .where(OutboxMessage.event_type == "order.refund_due")).scalars().all()
    assert [d["data"]["order_id"] for d in due] == [oid] and due[0]["data"]["payment_ref"] == "tx-1"


# -- the mini-program shop's own order pushes ------------------------------------------------------

@pytest.fixture
def shop(api):
    sim = WeChatShopSimulator.from_env(sandbox_env()).start()
    system = api.ctx.config.systems["wechat_shop"]
    system = SystemConfig(**{**system.model_dump(), "base_url": sim.base_url})
    binder = seed_binder(MemoryBinder(), [s.code for s in CATALOG])
    api.deps.connectors["wechat_shop"] = build_connector("wechat_shop", system, binder)
    yield sim
    api.deps.connectors["wechat_shop"].close()
    sim.stop()


def push(api, sim, event: str, shop_order_id: str):
    body = sim.push_body(f"channels_ec_{event}", shop_order_id)
    return api.client.post("/callbacks/wechat_shop", data=body, query_string=sim.signed_query(),
                           headers={"Content-Type": "application/json"})


def test_a_shop_payment_after_the_hub_expired_the_order_is_owed_back(api, shop):
    api.stock(10)
    shop.seed_order("3705115058471208999", [("TEA-001", 2, 12000)], status=10, fulfillment="pickup",
                    store_id="S001")
    assert push(api, shop, "order_new", "3705115058471208999").status_code == 200
    with api.ctx.uow() as uow:              # the hub expires it before the shop's payment arrives
        order = orders.find_by_idempotency(uow, "wechat_shop", "wechat_shop:3705115058471208999")
        orders.cancel(uow, order, "hub", "unpaid after 15 minutes")
        oid = order.id
        uow.commit()
    shop.seed_order("3705115058471208999", [("TEA-001", 2, 12000)], status=20, fulfillment="pickup",
                    store_id="S001")
    r = push(api, shop, "order_pay", "3705115058471208999")
    assert r.status_code == 200 and r.get_data() == b"success"
    assert push(api, shop, "order_pay", "3705115058471208999").status_code == 200      # duplicate push: once
    with api.ctx.uow() as uow:
        order = orders.get(uow, oid)
        assert order.status == "cancelled" and order.paid_at is not None
        [refund] = money_owed.of_order(uow, oid)
        assert (refund.amount_fen, refund.status, refund.cause) == (24000, "requested", "paid_late")
    assert api.level().reserved == 0


def test_shop_order_push_places_then_pays_the_order_once(api, shop):
    api.stock(10)
    shop.seed_order("3705115058471208928", [("TEA-001", 2, 12000)], status=10, fulfillment="pickup",
                    store_id="S001")
    r = push(api, shop, "order_new", "3705115058471208928")
    assert r.status_code == 200 and r.get_data() == b"success", r.get_data()
    assert api.level().reserved == 2
    shop.seed_order("3705115058471208928", [("TEA-001", 2, 12000)], status=20, fulfillment="pickup",
                    store_id="S001")
    assert push(api, shop, "order_pay", "3705115058471208928").status_code == 200
    assert push(api, shop, "order_pay", "3705115058471208928").status_code == 200      # duplicate push
    with api.ctx.uow() as uow:
        order = orders.find_by_idempotency(uow, "wechat_shop", "wechat_shop:3705115058471208928")
        assert order.status == "allocated" and order.external_id == "3705115058471208928"
        assert order.total_fen == 24000
    assert api.level().reserved == 2
    r = api.client.post("/callbacks/wechat_shop", data=shop.push_body("channels_ec_order_pay", "1"),
                        query_string={**shop.signed_query(), "signature": "0" * 40})
    assert r.status_code == 401


def test_the_shops_refund_of_a_completed_order_is_applied_once_and_moves_no_stock(api, shop):
    """`payments.refunded` tried completed -> cancelled: IllegalTransition, and the shop's push got 409 for ever."""
    api.stock(10)
    shop.seed_order("3705115058471208777", [("TEA-001", 2, 12000)], status=20, fulfillment="pickup",
                    store_id="S001")
    assert push(api, shop, "order_pay", "3705115058471208777").status_code == 200
    with api.ctx.uow() as uow:
        order = orders.find_by_idempotency(uow, "wechat_shop", "wechat_shop:3705115058471208777")
        oid = order.id
        for step in ("picking", "picked", "ready_for_pickup", "collected", "completed"):
            orders.transition(uow, orders.get(uow, oid, lock=True), step, "test")
        uow.commit()
    assert api.level().on_hand == 8
    shop.seed_order("3705115058471208777", [("TEA-001", 2, 12000)], status=200, fulfillment="pickup",
                    store_id="S001")
    for _ in range(2):                                   # the shop pushes again: once
        r = push(api, shop, "order_settle", "3705115058471208777")
        assert r.status_code == 200 and r.get_data() == b"success", r.get_data()
    order = api.get(f"/api/v1/orders/{oid}", key=api.ctx.config.channel("wechat_shop").key).json   # the shop's order
    assert order["status"] == "refunded"
    assert [(x["amount_fen"], x["status"], x["cause"]) for x in order["refunds"]] == [(24000, "success", "channel")]
    assert transitions(api, oid)[-2:] == ["completed", "refunded"]
    assert api.level().on_hand == 8                      # money only: the goods stay with the buyer
    with api.ctx.uow() as uow:                           # the shop settled it: nothing for the hub to ask
        types = [e.event_type for e in uow.session.execute(select(OutboxMessage)).scalars()]
    assert "order.refund_due" not in types

"""The WeChat shop's own orders, beyond taking them: the delivery told back to the shop (`order/delivery/send`, once
per real change) when a rider is booked or a waybill ships, and the buyer's after-sales requests (售后) decided by
the hub and answered through the shop's API (`aftersale/acceptapply`, `rejectapply`) — against the shop's
simulator, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from connectors.base import MemoryBinder, RetryPolicy
from connectors.registry import build_connector
from hub import handlers
from hub.config import SystemConfig
from hub.events import ChannelAfterSaleAnswerDue, OrderStatusChanged
from hub.flows import channel_after_sales, channel_delivery
from hub.services import money_owed, orders
from hub.storage.tables import OutboxMessage, Shipment
from sandbox.credentials import sandbox_env
from sandbox.wechat_shop import WeChatShopSimulator, seed_binder, shop_ids
from tests.support import CATALOG

FAST = RetryPolicy(attempts=2, initial=0.01, maximum=0.02, jitter=0)


@pytest.fixture
def shop(api):
    sim = WeChatShopSimulator.from_env(sandbox_env()).start()
    system = SystemConfig(**{**api.ctx.config.systems["wechat_shop"].model_dump(), "base_url": sim.base_url})
    connector = build_connector("wechat_shop", system, seed_binder(MemoryBinder(), [s.code for s in CATALOG]), FAST)
    api.deps.connectors["wechat_shop"] = connector
    api.ctx.connectors.overrides["wechat_shop"] = connector
    yield sim
    connector.close()
    sim.stop()


def push(api, sim, body: bytes):
    return api.client.post("/callbacks/wechat_shop", data=body, query_string=sim.signed_query(),
                           headers={"Content-Type": "application/json"})


def take(api, sim, shop_id: str, kind: str = "pickup", qty: int = 2, store: str | None = "S001"):
    sim.seed_order(shop_id, [("TEA-001", qty, 1200)], status=20, fulfillment=kind, store_id=store)
    r = push(api, sim, sim.push_body("channels_ec_order_pay", shop_id))
    assert r.status_code == 200, r.get_data()
    return the_order(api, shop_id)


def the_order(api, shop_id: str):
    with api.ctx.uow() as uow:
        o = orders.find_by_idempotency(uow, "wechat_shop", f"wechat_shop:{shop_id}")
        return SimpleNamespace(id=o.id, status=o.status, fulfillment_type=o.fulfillment_type,
                               location_id=o.location_id)


def changed(order, to: str) -> OrderStatusChanged:
    return OrderStatusChanged(order_id=order.id, from_status="allocated", to_status=to,
                              fulfillment=order.fulfillment_type, location_id=order.location_id, source="test")


def leave(api, order, to: str, kind: str, carrier: str, ref: str) -> None:
    """The order leaves as the courier flows record it: its shipment (the only active one), then its status."""
    with api.ctx.uow() as uow:
        for old in uow.session.execute(select(Shipment).where(Shipment.order_id == order.id)).scalars():
            old.active = False
        uow.session.add(Shipment(order_id=order.id, kind=kind, carrier=carrier, shipment_ref=ref, status="booked",
                                 active=True))
        row = orders.get(uow, order.id)
        if row.status != to:
            orders.transition(uow, row, to, carrier, f"{carrier} {ref}")
        uow.commit()


def answers_due(api) -> list[ChannelAfterSaleAnswerDue]:
    with api.ctx.uow() as uow:
        return [ChannelAfterSaleAnswerDue.from_data(p["data"]) for p in uow.session.execute(
            select(OutboxMessage.payload).where(OutboxMessage.event_type == "channel.after_sale_answer_due")
            .order_by(OutboxMessage.id)).scalars()]


def refunds_of(api, order_id: str) -> list[tuple[str, int, str]]:
    with api.ctx.uow() as uow:
        return [(r.refund_no, r.amount_fen, r.status) for r in money_owed.of_order(uow, order_id)]


# -- delivery back to the shop -----------------------------------------------------------------------------------

def test_the_consumer_takes_the_states_an_order_leaves_in():
    assert handlers.CHANNEL_DELIVERY_SEND.to == frozenset({"dispatched", "shipped"})
    assert handlers.CHANNEL_DELIVERY_SEND.calls_out


def test_a_shop_order_whose_rider_is_booked_is_told_to_the_shop_once(api, shop):
    api.stock(10)
    order = take(api, shop, "3705300000000000001", kind="delivery", store=None)
    assert order.status == "allocated"
    leave(api, order, "dispatched", "local", "local_delivery", "dada-7001")
    for _ in range(2):                                  # the event redelivered: told once
        channel_delivery.channel_delivery_send(api.ctx, changed(order, "dispatched"))
    [sent] = shop.deliveries
    product_id, sku_id = shop_ids("TEA-001")
    assert sent == {"order_id": "3705300000000000001", "delivery_list": [
        {"delivery_id": "DADA", "waybill_id": "dada-7001", "deliver_type": 1,
         "product_infos": [{"product_id": product_id, "sku_id": sku_id, "product_cnt": 2}]}]}
    assert len(shop.requests_to("/channels/ec/order/delivery/send")) == 1
    assert shop.orders["3705300000000000001"]["status"] == 30
    # The rider gave up; another courier's rider is booked: a real change, told.
    leave(api, order, "dispatched", "local", "sf_same_city", "sftc-88")
    channel_delivery.channel_delivery_send(api.ctx, changed(order, "dispatched"))
    assert [d["delivery_list"][0]["waybill_id"] for d in shop.deliveries] == ["dada-7001", "sftc-88"]
    assert shop.deliveries[1]["delivery_list"][0]["delivery_id"] == "SFTC"


def test_an_express_shop_order_is_told_its_waybill(api, shop):
    api.stock(10)
    order = take(api, shop, "3705300000000000002", kind="express", store=None)
    leave(api, order, "shipped", "express", "express", "SF1400000000001")
    channel_delivery.channel_delivery_send(api.ctx, changed(order, "shipped"))
    [sent] = shop.deliveries
    assert (sent["delivery_list"][0]["delivery_id"], sent["delivery_list"][0]["waybill_id"]) == \
        ("SF", "SF1400000000001")


def test_an_order_the_hub_took_itself_tells_the_shop_nothing(api, shop):
    api.stock(10)
    oid = api.order("k-own", kind="delivery")
    api.pay(oid)
    with api.ctx.uow() as uow:
        row = orders.get(uow, oid)
        order = SimpleNamespace(id=row.id, fulfillment_type=row.fulfillment_type, location_id=row.location_id)
    leave(api, order, "dispatched", "local", "local_delivery", "dada-7002")
    channel_delivery.channel_delivery_send(api.ctx, changed(order, "dispatched"))
    assert shop.deliveries == [] and shop.requests_to("/channels/ec/order/delivery/send") == []


# -- after-sales --------------------------------------------------------------------------------------------------

def test_a_refund_request_accepted_reaches_the_shop_and_refunds_the_order(api, shop):
    api.stock(10)
    order = take(api, shop, "3705300000000000003")
    assert api.level().reserved == 2
    shop.seed_after_sale("9100001", "3705300000000000003", 2400)
    for _ in range(2):                                   # the shop pushes twice: decided once
        assert push(api, shop, shop.after_sale_body("9100001")).status_code == 200
    [due] = answers_due(api)
    assert (due.accept, due.after_sale_id, due.system) == (True, "9100001", "wechat_shop")
    assert refunds_of(api, order.id) == [("AS-wechat_shop-9100001", 2400, "requested")]

    for _ in range(2):                                   # redelivered: the shop applies it once
        channel_after_sales.channel_after_sale_answer(api.ctx, due)
    assert shop.after_sale_calls == [("accept", "9100001")]
    assert shop.after_sales["9100001"]["status"] == "MERCHANT_REFUND_SUCCESS"
    assert refunds_of(api, order.id) == [("AS-wechat_shop-9100001", 2400, "success")]
    assert the_order(api, "3705300000000000003").status == "refunded" and api.level().reserved == 0
    # The shop's order is refunded (200) too; its push changes nothing more.
    assert shop.orders["3705300000000000003"]["status"] == 200
    assert push(api, shop, shop.push_body("channels_ec_order_cancel", "3705300000000000003")).status_code == 200
    assert refunds_of(api, order.id) == [("AS-wechat_shop-9100001", 2400, "success")]
    with api.ctx.uow() as uow:                           # the shop paid it back: nothing asked of WeChat Pay
        assert uow.session.execute(select(OutboxMessage).where(
            OutboxMessage.event_type == "order.refund_due")).first() is None


def test_a_partial_refund_request_leaves_the_order_going(api, shop):
    api.stock(10)
    order = take(api, shop, "3705300000000000004")
    shop.seed_after_sale("9100002", "3705300000000000004", 1200)
    assert push(api, shop, shop.after_sale_body("9100002")).status_code == 200
    [due] = answers_due(api)
    channel_after_sales.channel_after_sale_answer(api.ctx, due)
    assert refunds_of(api, order.id) == [("AS-wechat_shop-9100002", 1200, "success")]
    assert the_order(api, "3705300000000000004").status == "allocated" and api.level().reserved == 2


def test_a_request_for_more_than_was_paid_is_rejected_through_the_shop(api, shop):
    api.stock(10)
    order = take(api, shop, "3705300000000000005")
    shop.seed_after_sale("9100003", "3705300000000000005", 5000)
    assert push(api, shop, shop.after_sale_body("9100003")).status_code == 200
    [due] = answers_due(api)
    assert due.accept is False and "2400 fen" in due.reason
    channel_after_sales.channel_after_sale_answer(api.ctx, due)
    [(verb, _)] = shop.after_sale_calls
    assert verb == "reject" and shop.after_sales["9100003"]["status"] == "MERCHANT_REJECT_REFUND"
    [req] = shop.requests_to("/channels/ec/aftersale/rejectapply")
    assert "2400 fen" in req.json()["reject_reason"]
    with api.ctx.uow() as uow:
        [row] = money_owed.of_order(uow, order.id)
        assert row.status == "failed" and "rejected in wechat_shop" in row.detail
    assert the_order(api, "3705300000000000005").status == "allocated"


def test_a_request_the_buyer_withdrew_before_the_answer_is_recorded_as_closed(api, shop):
    api.stock(10)
    order = take(api, shop, "3705300000000000006")
    shop.seed_after_sale("9100004", "3705300000000000006", 1200)
    assert push(api, shop, shop.after_sale_body("9100004")).status_code == 200
    [due] = answers_due(api)
    shop.after_sales["9100004"]["status"] = "USER_CANCELD"      # withdrawn in the shop meanwhile
    channel_after_sales.channel_after_sale_answer(api.ctx, due)  # the shop refuses the answer: not parked
    assert shop.after_sale_calls == []
    assert refunds_of(api, order.id) == [("AS-wechat_shop-9100004", 1200, "closed")]


def test_an_after_sales_push_naming_another_orders_request_is_422_and_decides_nothing(api, shop):
    api.stock(10)
    order = take(api, shop, "3705300000000000007")
    take(api, shop, "3705300000000000008")
    shop.seed_after_sale("9100005", "3705300000000000008", 1200)
    body = json.loads(shop.after_sale_body("9100005"))
    body["finder_shop_aftersale_status_update"]["order_id"] = "3705300000000000007"
    r = push(api, shop, json.dumps(body).encode())
    assert r.status_code == 422 and "9100005" in r.json["message"]
    assert answers_due(api) == [] and refunds_of(api, order.id) == []

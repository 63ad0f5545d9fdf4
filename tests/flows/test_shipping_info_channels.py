"""The mini-program platform's shipping-info upload only for orders WeChat Pay took: the WeChat shop's orders (its
own checkout; their delivery is told through the shop's `order/delivery/send`) and Meituan's are left alone — on
the old config the shop's orders were the mini-program channel's, so WeChat Pay was told of `wechat_shop:<id>`."""
from __future__ import annotations

from sqlalchemy import select
from werkzeug.test import Client

from hub import handlers
from hub.api.app import build_api
from hub.storage.tables import OrderRow

UPLOAD = "/wxa/sec/order/upload_shipping_info"


def shop_order(flow, shop_id: str) -> OrderRow:
    shop = flow.sandbox.wechat_shop
    shop.seed_order(shop_id, [("TEA-001", 1, 1200)], status=20, fulfillment="pickup", store_id="S001")
    r = Client(build_api(flow.ctx)).post("/callbacks/wechat_shop",
                                         data=shop.push_body("channels_ec_order_pay", shop_id),
                                         query_string=shop.signed_query(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.get_data()
    with flow.ctx.reader() as uow:
        order = uow.session.execute(select(OrderRow).where(
            OrderRow.idempotency_key == f"wechat_shop:{shop_id}")).scalar_one()
        uow.session.expunge(order)
        return order


def test_a_wechat_shop_order_ready_for_pickup_is_never_uploaded_to_wechat_pay(flow):
    order = shop_order(flow, "3705300000000000201")
    assert order.paid_at is not None and order.payment_ref == "wechat_shop:3705300000000000201"
    assert flow.ctx.connectors.payment_platform_for(order) is None          # the shop took its money
    flow.move(order.id, "picking", "picked", "ready_for_pickup")
    for _ in range(2):
        outcomes = flow.deliver(handlers.SHIPPING_INFO_UPLOAD, "order.status_changed", order_id=order.id,
                                to="ready_for_pickup")
        assert {o.status for o in outcomes} <= {"applied", "duplicate"}
    assert flow.sandbox.wechat_pay.requests_to(UPLOAD) == [] and flow.sandbox.wechat_pay.shipping_uploads == []


def test_a_mini_program_order_paid_through_wechat_pay_is_still_uploaded(flow):
    order_id = flow.place("pickup", [("CUP-002", 1, 4500)], store_id="S002")
    tx = flow.pay(order_id)
    flow.move(order_id, "picking", "picked", "ready_for_pickup")
    flow.deliver(handlers.SHIPPING_INFO_UPLOAD, "order.status_changed", order_id=order_id, to="ready_for_pickup")
    [upload] = flow.sandbox.wechat_pay.shipping_uploads
    assert upload["order_key"]["transaction_id"] == tx

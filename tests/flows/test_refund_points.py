"""Points follow every refund once, whoever made it (`order.refunded` → `crm_refund_points`), against the CRM
simulator's ledger: the hub's own refund at WeChat Pay, one made at the payment platform by hand, a platform's
partial refund (Meituan's `part_refund`: its orders carry a CRM member, the buyer the platform names, who earns
points at completion and uses none), and the WeChat shop's after-sales refund. A redelivered event moves nothing."""
from __future__ import annotations

from sqlalchemy import select
from werkzeug.test import Client

from hub import handlers
from hub.api.app import build_api
from hub.domain.discounts import step_share
from hub.services import money_owed, orders, picking
from hub.services import tracking as fulfilment
from hub.storage.tables import OrderRow, utcnow
from sandbox.wechat_pay import SimRefund
from tests.flows.conftest import BUYER

from .test_members import member, place, settle


def complete(flow, order_id: str) -> None:
    with flow.ctx.uow() as uow:
        fulfilment.complete(uow, orders.get(uow, order_id, lock=True), "test", "handed over")
        uow.commit()
    for _ in range(2):                                                  # redelivered: earned once
        flow.deliver(handlers.CRM_POINTS, "order.status_changed", order_id=order_id, to="completed")


def refunded_twice(flow, order_id: str) -> list[dict]:
    """The order's `order.refunded` events, each delivered twice to crm_refund_points."""
    done = flow.events("order.refunded", order_id=order_id)
    for _ in range(2):
        flow.deliver(handlers.CRM_REFUND_POINTS, "order.refunded", order_id=order_id)
    return done


def entries(flow, member_id: str) -> list[int]:
    return [e["points"] for e in flow.sandbox.crm.point_entries if e["member_id"] == member_id]


def crm_member(flow, ref: str):
    found = flow.sandbox.crm.member_by_ref(ref)
    assert found is not None, f"no CRM member {ref}"
    return found


# -- the hub's own refund at WeChat Pay: once, on the money back, not on its asking -------------------------------

def test_a_refund_asked_at_wechat_pay_moves_points_once_when_the_money_is_back(flow):
    m = member(flow)
    order_id = place(flow, key="wx-once", coupon=None, points=2000)
    flow.pay(order_id)
    flow.deliver(handlers.CRM_REDEEM, "order.status_changed", order_id=order_id, to="paid")
    total = flow.order(order_id).total_fen
    with flow.ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        money_owed.owe(uow, order, payment_ref=order.payment_ref, paid_fen=total, cause="asked", source="test",
                       reason="part back", amount_fen=total // 2)
        uow.commit()
    settle(flow, order_id)                                 # WeChat Pay's answer and its notification: both seen
    settle(flow, order_id)                                 # asked again, notified again: still done once
    assert len(refunded_twice(flow, order_id)) == 1
    assert m.points == 3000 + step_share(0, total // 2, total, 2000)
    assert entries(flow, m.member_id) == [step_share(0, total // 2, total, 2000)]


def test_a_refund_made_at_the_payment_platform_by_hand_moves_points_once(flow):
    """A refund the hub never asked for, learned from WeChat Pay's notification (`refunds.apply_notice`)."""
    m = member(flow)
    order_id = place(flow, key="wx-hand", coupon=None, points=0)
    tx = flow.pay(order_id)
    flow.move(order_id, "picking", "picked", "ready_for_pickup", "collected")
    complete(flow, order_id)
    total = flow.order(order_id).total_fen
    earned = total // 100
    assert m.points == 5000 + earned
    wp = flow.sandbox.wechat_pay                          # refunded in the merchant console, then notified
    by_hand = SimRefund("RHAND-1", "50300000000001", tx, order_id, total // 3, total, "SUCCESS", "", "")
    body = wp.refund_notification_body(by_hand, "SUCCESS")
    app = Client(build_api(flow.ctx))
    for _ in range(2):                                    # notified twice: recorded once
        r = app.post("/callbacks/wechat_pay", data=body, headers={**wp.sign(body), "Content-Type": "application/json"})
        assert r.status_code == 200, r.get_data()
    assert flow.events("order.refund_due") == []          # nothing to ask: the platform did it
    assert len(refunded_twice(flow, order_id)) == 1
    taken = step_share(0, total // 3, total, earned)
    assert m.points == 5000 + earned - taken and entries(flow, m.member_id) == [earned, -taken]


# -- a channel's platform refunds: Meituan's part_refund --------------------------------------------------------

MT_LINES = [("TEA-001", 3, 12800), ("CUP-002", 1, 4500)]                  # 42900 fen


def mt_post(flow, params):
    return Client(build_api(flow.ctx)).post("/callbacks/meituan", data=params)


def mt_taken(flow, external_id: str) -> str:
    mt = flow.sandbox.meituan
    push_url = flow.ctx.connectors.channel("meituan").push_url
    mt.seed_order(external_id, MT_LINES, "S001", status=2, pick_type=1)
    assert mt_post(flow, mt.push_params(push_url, external_id, "order")).status_code == 200
    with flow.ctx.uow() as uow:
        order = orders.find_by_idempotency(uow, "meituan", f"meituan:{external_id}")
        assert order is not None and order.paid_at is not None
        return order.id


def mt_refund(flow, external_id: str, refund_id: str, lines) -> None:
    push_url = flow.ctx.connectors.channel("meituan").push_url
    params = flow.sandbox.meituan.refund_params(push_url, external_id, refund_id, lines, "少送")
    for _ in range(2):                                                   # pushed twice: decided once
        assert mt_post(flow, params).status_code == 200
    assert flow.sandbox.meituan.refunds[refund_id]["status"] == "agreed"


def mt_collected(flow, order_id: str) -> None:
    with flow.ctx.uow() as uow:
        picking.complete(uow, "S001", order_id, [], "Wang", utcnow())
        uow.commit()
    flow.move(order_id, "collected")


def test_a_meituan_part_refund_after_completion_takes_its_share_of_the_earned_points_back_once(flow):
    order_id = mt_taken(flow, "6201")
    mt_collected(flow, order_id)
    complete(flow, order_id)
    buyer = crm_member(flow, flow.order(order_id).buyer["id"])          # the platform's buyer, a CRM member
    total = flow.order(order_id).total_fen
    earned = total // 100
    assert buyer.points == earned
    mt_refund(flow, "6201", "R-20", [("TEA-001", 1)])
    [done] = refunded_twice(flow, order_id)
    assert (done["data"]["amount_fen"], done["data"]["after_completion"]) == (12800, True)
    taken = step_share(0, 12800, total, earned)
    assert buyer.points == earned - taken and entries(flow, buyer.member_id) == [earned, -taken]
    assert flow.events("order.refund_due") == [] and flow.sandbox.wechat_pay.refunds == {}


def test_a_meituan_part_refund_before_completion_is_not_earned_on(flow):
    order_id = mt_taken(flow, "6202")
    mt_refund(flow, "6202", "R-21", [("TEA-001", 1)])
    [done] = refunded_twice(flow, order_id)                              # nothing used, nothing earned yet
    assert done["data"]["after_completion"] is False
    mt_collected(flow, order_id)
    complete(flow, order_id)
    buyer = crm_member(flow, flow.order(order_id).buyer["id"])
    assert entries(flow, buyer.member_id) == [(flow.order(order_id).total_fen - 12800) // 100]


# -- the WeChat shop's after-sales refund -----------------------------------------------------------------------

def shop_post(flow, body: bytes):
    return Client(build_api(flow.ctx)).post("/callbacks/wechat_shop", data=body,
                                            query_string=flow.sandbox.wechat_shop.signed_query(),
                                            headers={"Content-Type": "application/json"})


def shop_order(flow, shop_id: str) -> str:
    with flow.ctx.reader() as uow:
        return uow.session.execute(select(OrderRow.id).where(
            OrderRow.idempotency_key == f"wechat_shop:{shop_id}")).scalar_one()


def test_a_wechat_shop_after_sales_refund_after_completion_takes_earned_points_back_once(flow):
    shop, shop_id = flow.sandbox.wechat_shop, "3705300000000000101"
    shop.seed_order(shop_id, [("TEA-001", 2, 1200)], status=20, fulfillment="pickup", store_id="S001",
                    openid=BUYER.id)
    assert shop_post(flow, shop.push_body("channels_ec_order_pay", shop_id)).status_code == 200
    order_id = shop_order(flow, shop_id)
    m = member(flow, points=0)
    flow.move(order_id, "picking", "picked", "ready_for_pickup", "collected")
    complete(flow, order_id)
    assert m.points == 24
    shop.seed_after_sale("9100101", shop_id, 1200)
    for _ in range(2):                                                   # pushed twice: decided once
        assert shop_post(flow, shop.after_sale_body("9100101")).status_code == 200
    [due] = flow.events("channel.after_sale_answer_due", order_id=order_id)
    assert flow.events("order.refunded", order_id=order_id) == []       # requested: not back yet
    for _ in range(2):                                                   # redelivered
        flow.deliver(handlers.CHANNEL_AFTER_SALE_ANSWER, "channel.after_sale_answer_due", order_id=order_id)
    assert shop.after_sales["9100101"]["status"] == "MERCHANT_REFUND_SUCCESS"
    assert shop_post(flow, shop.after_sale_body("9100101")).status_code == 200       # its push after: nothing new
    [done] = refunded_twice(flow, order_id)
    assert (done["data"]["refund_no"], done["data"]["amount_fen"]) == ("AS-wechat_shop-9100101", 1200)
    assert m.points == 12 and entries(flow, m.member_id) == [24, -12]
    assert flow.events("order.refund_due") == [] and due["data"]["accept"] is True

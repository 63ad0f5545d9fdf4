"""Coupons and points through the CRM simulator: held at order, used at payment, given back on cancel,
moved in proportion on refunds; every step once, a CRM outage waited out."""
from __future__ import annotations

import pytest

from hub import handlers
from hub.domain.errors import BadInput, MemberRefused
from hub.domain.model import Fulfillment, FulfillmentType, OrderLine
from hub.flows import members
from hub.services import money_owed, orders, picking
from hub.services import tracking as fulfilment
from hub.storage.tables import Reservation
from tests.flows.conftest import BUYER
from tests.support import T0

LINES = (OrderLine("TEA-001", 2, 12800), OrderLine("CUP-002", 1, 4500))      # 30100 fen


def member(flow, points=5000):
    m = flow.sandbox.crm.enrol(BUYER.id, points)
    flow.sandbox.crm.issue_coupon(m.member_id, "CPN-100", 1000)
    return m


def place(flow, key="mk", coupon="CPN-100", points=2000) -> str:
    cmd = orders.PlaceOrder("miniprogram", key, LINES, BUYER, Fulfillment(FulfillmentType.PICKUP, "S001"),
                            coupon_code=coupon, points=points)
    cmd, _ = members.hold(flow.ctx, cmd)
    with flow.ctx.uow() as uow:
        order, _ = orders.place(uow, flow.ctx.config, cmd, now=T0)
        uow.commit()
        return order.id


def settle(flow, order_id) -> None:
    """The refunds owed asked of WeChat Pay's simulator and its notifications posted: the money back."""
    flow.deliver(handlers.ASK_FOR_REFUND, "order.refund_due", order_id=order_id)
    assert set(flow.platform_notifies()) <= {200}


def test_an_order_cancelled_unpaid_gives_coupon_and_points_back_once(flow):
    m = member(flow)
    order_id = place(flow)
    with flow.ctx.reader() as uow:
        order = orders.get(uow, order_id)
        assert order.total_fen == 30100 - 1000 - 2000
        assert sum(x.amount_fen for x in order.lines) == order.total_fen
    assert m.points == 3000 and flow.sandbox.crm.wallet.coupons["CPN-100"].status == "locked"
    with flow.ctx.uow() as uow:
        orders.cancel(uow, orders.get(uow, order_id, lock=True), "miniprogram", "changed my mind")
        uow.commit()
    for _ in range(2):                                   # redelivered
        flow.deliver(handlers.CRM_GIVE_BACK, "order.status_changed", order_id=order_id, to="cancelled")
    assert m.points == 5000 and flow.sandbox.crm.wallet.coupons["CPN-100"].status == "available"
    assert [h.status for h in flow.sandbox.crm.wallet.holds.values()] == ["released"]


def test_paid_then_refunded_in_part_returns_points_in_proportion(flow):
    m = member(flow)
    order_id = place(flow)
    flow.pay(order_id)
    for _ in range(2):
        flow.deliver(handlers.CRM_REDEEM, "order.status_changed", order_id=order_id, to="paid")
    assert flow.sandbox.crm.wallet.coupons["CPN-100"].status == "used" and m.points == 3000
    total = flow.order(order_id).total_fen                                   # 27100
    with flow.ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        money_owed.owe(uow, order, payment_ref=order.payment_ref, paid_fen=total, cause="asked", source="test",
                       reason="one cup broken", amount_fen=total // 4)
        uow.commit()
    assert not flow.events("order.refunded")                                 # asked, not back yet: no points
    settle(flow, order_id)
    for _ in range(2):
        flow.deliver(handlers.CRM_REFUND_POINTS, "order.refunded", order_id=order_id)
    assert m.points == 3000 + 2000 * (total // 4) // total                   # a quarter of the points used
    assert [e["points"] for e in flow.sandbox.crm.point_entries] == [2000 * (total // 4) // total]


def test_a_refund_of_a_completed_order_takes_earned_points_back(flow):
    m = member(flow)
    order_id = place(flow, coupon=None, points=0)
    flow.pay(order_id)
    flow.move(order_id, "picking", "picked", "ready_for_pickup", "collected")
    with flow.ctx.uow() as uow:
        fulfilment.complete(uow, orders.get(uow, order_id, lock=True), "test", "handed over")
        uow.commit()
    flow.deliver(handlers.CRM_POINTS, "order.status_changed", order_id=order_id, to="completed")
    assert m.points == 5000 + 301
    with flow.ctx.uow() as uow:
        orders.refund_due(uow, orders.get(uow, order_id, lock=True), "not as described")
        uow.commit()
    settle(flow, order_id)
    for _ in range(2):
        flow.deliver(handlers.CRM_REFUND_POINTS, "order.refunded", order_id=order_id)
    assert m.points == 5000


def test_the_crm_down_in_the_middle_delays_and_never_doubles(flow):
    m = member(flow)
    order_id = place(flow)
    flow.pay(order_id)
    flow.sandbox.crm.faults.fail_next, flow.sandbox.crm.faults.error_status = 1000, 503
    outcomes = flow.deliver(handlers.CRM_REDEEM, "order.status_changed", order_id=order_id, to="paid")
    assert all(o.status != "applied" for o in outcomes)
    assert flow.sandbox.crm.wallet.coupons["CPN-100"].status == "locked"          # nothing lost: not yet used
    flow.sandbox.crm.faults.fail_next = 0                                        # the CRM is back
    for _ in range(2):
        flow.deliver(handlers.CRM_REDEEM, "order.status_changed", order_id=order_id, to="paid")
    assert flow.sandbox.crm.wallet.coupons["CPN-100"].status == "used"
    assert m.points == 3000 and [h.status for h in flow.sandbox.crm.wallet.holds.values()] == ["used"]


@pytest.mark.parametrize(("coupon", "points", "reason"), [
    ("CPN-OTHER", 0, "coupon_not_owned"), (None, 20000, "points_insufficient")])
def test_bad_member_input_is_422_and_nothing_is_reserved(flow, coupon, points, reason):
    m = member(flow)
    other = flow.sandbox.crm.enrol("someone-else")
    flow.sandbox.crm.issue_coupon(other.member_id, "CPN-OTHER", 500)
    with pytest.raises(BadInput, match=reason):
        place(flow, coupon=coupon, points=points)
    with flow.ctx.reader() as uow:
        assert uow.session.query(Reservation).count() == 0
    assert m.points == 5000


def test_a_used_coupon_is_refused_409_before_any_stock_or_points_are_taken(flow):
    m = member(flow)
    flow.sandbox.crm.wallet.coupons["CPN-100"].status = "used"
    with pytest.raises(MemberRefused, match="coupon_used"):
        place(flow, points=100)
    with pytest.raises(MemberRefused, match="coupon_used"):      # the same request again: the same answer
        place(flow, points=100)
    with flow.ctx.reader() as uow:
        assert uow.session.query(Reservation).count() == 0
    assert m.points == 5000 and not flow.sandbox.crm.wallet.holds


def test_discounts_beyond_the_lines_are_refused_and_nothing_stays_held(flow):
    m = member(flow, 100000)
    flow.sandbox.crm.issue_coupon(m.member_id, "CPN-BIG", 40000)
    with pytest.raises(BadInput, match="more than the lines"):          # points: refused before the CRM is asked
        place(flow, key="big", coupon=None, points=40000)
    assert not flow.sandbox.crm.wallet.holds
    cmd = orders.PlaceOrder("miniprogram", "big2", LINES, BUYER, Fulfillment(FulfillmentType.PICKUP, "S001"),
                            coupon_code="CPN-BIG", points=100)
    cmd, held = members.hold(flow.ctx, cmd)                             # the coupon's value: known once locked
    assert flow.sandbox.crm.wallet.coupons["CPN-BIG"].status == "locked"
    with pytest.raises(BadInput, match="more than the lines"):
        with flow.ctx.uow() as uow:
            orders.place(uow, flow.ctx.config, cmd, now=T0)
    members.give_back_unplaced(flow.ctx, held)                          # as the API does, before it answers
    assert flow.sandbox.crm.wallet.coupons["CPN-BIG"].status == "available"
    assert m.points == 100000 and [h.status for h in flow.sandbox.crm.wallet.holds.values()] == ["released"]
    assert not flow.events("member.holds_release_due")                   # none due: given back at once


def test_a_short_pick_of_a_discounted_order_refunds_the_line_as_discounted_and_points_in_proportion(flow):
    m = member(flow)
    order_id = place(flow, key="short-m")
    tx = flow.pay(order_id)
    flow.deliver(handlers.CRM_REDEEM, "order.status_changed", order_id=order_id, to="paid")
    with flow.ctx.reader() as uow:
        order = orders.get(uow, order_id)
        total, cup = order.total_fen, next(x.amount_fen for x in order.lines if x.sku == "CUP-002")
    assert (total, cup) == (27100, 4500 - 3000 * 4500 // 30100 - 1)     # the cup's share of the discounts off
    with flow.ctx.uow() as uow:                                         # the store finds no cup
        picking.complete(uow, "S001", order_id, [picking.Picked("TEA-001", 2), picking.Picked("CUP-002", 0)],
                         "Wang", T0)
        uow.commit()
    assert flow.order(order_id).status == "ready_for_pickup"
    flow.deliver(handlers.ASK_FOR_REFUND, "order.refund_due", order_id=order_id)
    [at_pay] = flow.sandbox.wechat_pay.refunds.values()
    assert (at_pay.transaction_id, at_pay.amount_fen) == (tx, cup)      # the line as it was paid for
    assert flow.platform_notifies() == [200]
    for _ in range(2):
        flow.deliver(handlers.CRM_REFUND_POINTS, "order.refunded", order_id=order_id)
    back = 2000 * cup // total
    assert m.points == 3000 + back and [e["points"] for e in flow.sandbox.crm.point_entries] == [back]

    # collected and completed: points earned on what was kept; then all the rest refunded: every point used
    # comes back and exactly the points earned are taken back
    flow.move(order_id, "collected")
    with flow.ctx.uow() as uow:
        fulfilment.complete(uow, orders.get(uow, order_id, lock=True), "test", "handed over")
        uow.commit()
    flow.deliver(handlers.CRM_POINTS, "order.status_changed", order_id=order_id, to="completed")
    earned = (total - cup) // 100
    assert m.points == 3000 + back + earned
    with flow.ctx.uow() as uow:
        orders.refund_due(uow, orders.get(uow, order_id, lock=True), "not as described")
        uow.commit()
    settle(flow, order_id)
    for _ in range(2):
        flow.deliver(handlers.CRM_REFUND_POINTS, "order.refunded", order_id=order_id)
    assert m.points == 5000
    assert sorted(e["points"] for e in flow.sandbox.crm.point_entries) == sorted([back, earned, 2000 - back, -earned])


def _complete(flow, order_id):
    with flow.ctx.uow() as uow:
        fulfilment.complete(uow, orders.get(uow, order_id, lock=True), "test", "handed over")
        uow.commit()
    for _ in range(2):                                                   # redelivered: earned once
        flow.deliver(handlers.CRM_POINTS, "order.status_changed", order_id=order_id, to="completed")


def _refund(flow, order_id, amount_fen, cause="asked"):
    with flow.ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        money_owed.owe(uow, order, payment_ref=order.payment_ref, paid_fen=order.total_fen, cause=cause,
                       source="test", reason="part back", amount_fen=amount_fen)
        uow.commit()
    settle(flow, order_id)


def test_points_are_earned_on_the_money_kept_and_later_refunds_take_back_no_more_than_earned(flow):
    """Issue 24: a partial refund asked while the order was on its way is not earned on (nor is a short
    pick's), and is never taken back from what was earned; the refunds after completion take back exactly
    what was earned, in proportion, over several refunds."""
    m = member(flow)
    order_id = place(flow, key="kept-m", coupon=None, points=2000)
    flow.pay(order_id)
    flow.deliver(handlers.CRM_REDEEM, "order.status_changed", order_id=order_id, to="paid")
    with flow.ctx.uow() as uow:                                         # the store finds no cup: refunded
        picking.complete(uow, "S001", order_id, [picking.Picked("TEA-001", 2), picking.Picked("CUP-002", 0)],
                         "Wang", T0)
        uow.commit()
    total = flow.order(order_id).total_fen                               # 28100
    [short] = flow.events("order.refund_due", order_id=order_id)
    cup = short["data"]["amount_fen"]
    _refund(flow, order_id, 5000)                                        # asked while at the counter
    flow.move(order_id, "collected")
    _complete(flow, order_id)
    kept = total - cup - 5000
    earned = kept // 100                                                 # the old rule earned (total - cup) // 100
    assert m.points == 3000 + earned
    # the refunds owed before completion, their consumer running only now: the points used come back in
    # proportion, nothing earned is taken back
    for _ in range(2):
        flow.deliver(handlers.CRM_REFUND_POINTS, "order.refunded", order_id=order_id)
    back = 2000 * (cup + 5000) // total
    assert m.points == 3000 + earned + back
    # after completion: a third of what was kept, then the rest
    _refund(flow, order_id, kept // 3)
    _refund(flow, order_id, None)
    for _ in range(2):
        flow.deliver(handlers.CRM_REFUND_POINTS, "order.refunded", order_id=order_id)
    assert m.points == 5000                                              # every point used back, all earned gone
    entries = [e["points"] for e in flow.sandbox.crm.point_entries]     # the CRM's ledger, each applied once
    assert sum(p for p in entries if p < 0) == -earned
    assert sorted(entries) == sorted([earned, 2000 * cup // total, back - 2000 * cup // total,
                                      -(earned * (kept // 3) // kept), -(earned - earned * (kept // 3) // kept),
                                      2000 * (cup + 5000 + kept // 3) // total - back,
                                      2000 - 2000 * (cup + 5000 + kept // 3) // total])


def test_a_retry_after_its_attempt_was_removed_by_housekeeping_is_answered_by_the_order(flow):
    from datetime import timedelta

    from hub.services import housekeeping
    from hub.storage.tables import MemberHold, utcnow

    m = member(flow)
    order_id = place(flow, key="late-retry")
    later = utcnow() + timedelta(days=flow.ctx.config.hub.member_holds_keep_days + 1)
    assert housekeeping.remove_old_member_holds(flow.ctx, now=later) == 1
    ledger = list(flow.sandbox.crm.wallet.ledger)
    assert place(flow, key="late-retry") == order_id                    # the same order, nothing held again
    with flow.ctx.reader() as uow:
        assert uow.session.query(MemberHold).count() == 0
    assert m.points == 3000 and flow.sandbox.crm.wallet.coupons["CPN-100"].status == "locked"
    assert flow.sandbox.crm.wallet.ledger == ledger

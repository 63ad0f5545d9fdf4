"""Flow 2 at the store: the POS and the shipping-info upload follow the order."""
from __future__ import annotations

from hub import handlers
from hub.consumers import handle_once
from hub.services import orders


def test_pickup_reaches_the_pos_once_even_when_the_event_comes_twice(flow):
    order_id = flow.place("pickup", [("TEA-001", 2, 12800)], store_id="S001")
    flow.pay(order_id)
    pos = flow.sandbox.pos

    first = flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="allocated")
    again = flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="allocated")
    # The same change re-sent under a new message id (a relay that lost its confirm) is also harmless.
    envelope = flow.events("order.status_changed", order_id=order_id, to="allocated")[0]
    fresh = handle_once(flow.ctx, handlers.STORE_ORDER_TO_POS, {**envelope, "id": "resent-1"})

    assert [o.status for o in first + again] == ["applied", "duplicate"] and fresh.status == "applied"
    assert [o["reference_id"] for o in pos.orders_at("S001")] == [order_id]
    assert len(pos.requests_to("/v2/orders")) == 2            # two pushes, one POS order (idempotency key)
    assert pos.pickup_state(order_id) == "PROPOSED"
    assert [li["quantity"] for li in pos.order_for(order_id)["line_items"]] == ["2"]


def test_ready_prepares_at_the_pos_and_uploads_self_pickup_then_collected_completes(flow):
    order_id = flow.place("pickup", [("CUP-002", 1, 4500)], store_id="S002")
    tx = flow.pay(order_id)
    flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="allocated")
    flow.move(order_id, "picking", "picked", "ready_for_pickup")

    flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="ready_for_pickup")
    flow.deliver(handlers.SHIPPING_INFO_UPLOAD, "order.status_changed", order_id=order_id, to="ready_for_pickup")

    assert flow.sandbox.pos.pickup_state(order_id) == "PREPARED"
    [upload] = flow.sandbox.wechat_pay.shipping_uploads
    assert upload["logistics_type"] == 4 and upload["order_key"]["transaction_id"] == tx
    assert upload["shipping_list"][0]["item_desc"] == "CUP-002 x1"

    flow.move(order_id, "collected")
    flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="collected")
    assert flow.sandbox.pos.pickup_state(order_id) == "COMPLETED"
    assert len(flow.sandbox.wechat_pay.shipping_uploads) == 1   # nothing more to tell the platform


def test_cancelling_a_pushed_pickup_cancels_it_at_the_pos_and_a_late_push_is_skipped(flow):
    pushed = flow.place("pickup", [("TEA-001", 1, 12800)], store_id="S001", key="pushed")
    flow.pay(pushed)
    flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=pushed, to="allocated")
    never = flow.place("pickup", [("TEA-001", 1, 12800)], store_id="S001", key="never")
    flow.pay(never)
    for order_id in (pushed, never):
        with flow.ctx.uow() as uow:
            orders.cancel(uow, orders.get(uow, order_id, lock=True), "miniprogram", "buyer changed their mind")
            uow.commit()

    for order_id in (pushed, never):
        flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=order_id, to="cancelled")
    # The allocated event of the second order arrives only now: the order is gone, nothing is pushed.
    late = flow.deliver(handlers.STORE_ORDER_TO_POS, "order.status_changed", order_id=never, to="allocated")

    assert late[0].status == "applied"
    assert flow.sandbox.pos.pickup_state(pushed) == "CANCELED"
    assert flow.sandbox.pos.order_for(never) is None

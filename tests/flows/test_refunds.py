"""Refunds executed: every path that owes money ends in a refund asked of the payment platform (the
WeChat Pay simulator, over HTTP, signed) by `ask_for_refund`, and the order reaches refunded
only when the platform's notification (posted to the hub's real callback) says the money went back."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from hub import events, handlers
from hub.consumers import dead_letters, handle_once, replay
from hub.domain.order_states import OrderStatus as S
from hub.flows import refunds as refund_flow
from hub.services import housekeeping, money_owed, orders, refunds
from hub.storage.tables import RefundRow, StockLevel, utcnow
from tests.conftest import make_ctx

from .conftest import make_flow

CONSUMER = handlers.ASK_FOR_REFUND


def paid_pickup(flow, qty: int = 2) -> str:
    order_id = flow.place("pickup", [("TEA-001", qty, 12800)], store_id="S001", key=f"k-{time.time_ns()}")
    flow.pay(order_id)
    return order_id


def cancel(flow, order_id: str, reason: str = "buyer cancelled") -> None:
    with flow.ctx.uow() as uow:
        orders.cancel(uow, orders.get(uow, order_id, lock=True), "miniprogram", reason)
        uow.commit()


def ask(flow, order_id: str) -> list[str]:
    return [o.status for o in flow.deliver(CONSUMER, "order.refund_due", order_id=order_id)]


def refunds_of(flow, order_id: str) -> list[RefundRow]:
    with flow.ctx.uow() as uow:
        rows = money_owed.of_order(uow, order_id)
        uow.session.expunge_all()
        return rows


def reserved(flow, sku: str = "TEA-001", location: str = "S001") -> tuple[int, int]:
    with flow.ctx.uow() as uow:
        level = uow.session.get(StockLevel, (sku, location))
        return level.on_hand, level.reserved


def at_platform(flow) -> list[tuple[str, str, int, str]]:
    return sorted((r.refund_no, r.transaction_id, r.amount_fen, r.status)
                  for r in flow.sandbox.wechat_pay.refunds.values())


# -- each path that owes money --------------------------------------------------------------------

def test_a_paid_order_cancelled_is_refunded_when_the_platform_says_so(flow):
    order_id = paid_pickup(flow)
    cancel(flow, order_id)
    assert reserved(flow) == (10, 0)
    [pending] = refunds_of(flow, order_id)
    assert (pending.status, pending.amount_fen) == ("requested", 25600)     # visible before any call
    assert ask(flow, order_id) == ["applied"]
    assert at_platform(flow) == [(pending.refund_no, f"4200{order_id}", 25600, "SUCCESS")]
    [asked] = refunds_of(flow, order_id)
    assert asked.status == "processing" and asked.platform_refund_id
    assert flow.order(order_id).status == S.CANCELLED                  # asked is not paid back
    assert flow.platform_notifies() == [200]
    [done] = refunds_of(flow, order_id)
    assert done.status == "success" and done.settled_at is not None
    assert flow.order(order_id).status == S.REFUNDED
    assert reserved(flow) == (10, 0)                                    # nothing restocked twice


def test_a_payment_after_expiry_is_refunded(flow):
    order_id = flow.place("pickup", [("CUP-002", 1, 4500)], store_id="S001")
    with flow.ctx.uow() as uow:
        orders.cancel(uow, orders.get(uow, order_id, lock=True), "hub", "unpaid after 15 minutes")
        uow.commit()
    tx = flow.pay(order_id)                      # the platform's notification arrives late
    assert flow.order(order_id).status == S.CANCELLED
    assert ask(flow, order_id) == ["applied"]
    assert [(t, a) for _, t, a, _ in at_platform(flow)] == [(tx, 4500)]
    assert flow.platform_notifies() == [200]
    assert flow.order(order_id).status == S.REFUNDED


def test_a_second_payment_for_a_paid_order_is_refunded_and_the_order_goes_on(flow):
    order_id = paid_pickup(flow)
    first = flow.order(order_id).payment_ref
    flow.sandbox.wechat_pay.notification_body(order_id, 25600, transaction_id="4200SECOND")
    with flow.ctx.uow() as uow:
        assert orders.mark_paid(uow, orders.get(uow, order_id, lock=True), "wechat_pay", "4200SECOND", 25600)
        uow.commit()
    assert ask(flow, order_id) == ["applied"]
    assert [(t, a) for _, t, a, _ in at_platform(flow)] == [("4200SECOND", 25600)]
    assert flow.platform_notifies() == [200]
    [refund] = refunds_of(flow, order_id)
    assert (refund.payment_ref, refund.status, refund.cause) == ("4200SECOND", "success", "paid_twice")
    order = flow.order(order_id)
    assert (order.status, order.payment_ref) == (S.ALLOCATED, first)   # its own payment stands
    assert reserved(flow) == (10, 2)


def test_an_uncollected_pickup_ends_in_a_refund(flow):
    order_id = paid_pickup(flow)
    flow.move(order_id, S.READY_FOR_PICKUP)
    later = utcnow() + timedelta(days=flow.ctx.config.hub.pickup_uncollected_days, minutes=1)
    assert housekeeping.cancel_uncollected(flow.ctx, now=later) == [order_id]
    assert reserved(flow) == (10, 0) and flow.order(order_id).status == S.CANCELLED
    assert ask(flow, order_id) == ["applied"]
    assert flow.platform_notifies() == [200]
    assert flow.order(order_id).status == S.REFUNDED
    assert [r.cause for r in refunds_of(flow, order_id)] == ["not_collected"]


def test_a_partial_refund_asked_for_leaves_the_order_alone(flow):
    order_id = paid_pickup(flow)
    with flow.ctx.uow() as uow:
        refunds.ask(uow, orders.get(uow, order_id, lock=True), amount_fen=100, reason="chipped box",
                    source="ops", idempotency_key="partial-1")
        uow.commit()
    assert ask(flow, order_id) == ["applied"]
    assert [a for _, _, a, _ in at_platform(flow)] == [100]
    assert flow.platform_notifies() == [200]
    assert [(r.amount_fen, r.status) for r in refunds_of(flow, order_id)] == [(100, "success")]
    assert flow.order(order_id).status == S.ALLOCATED and reserved(flow) == (10, 2)
    cancel(flow, order_id)                       # the rest goes back on cancel: 25,500 fen
    assert ask(flow, order_id) == ["duplicate", "applied"]
    assert sorted(a for _, _, a, _ in at_platform(flow)) == [100, 25500]
    assert flow.platform_notifies() == [200]
    assert flow.order(order_id).status == S.REFUNDED


@pytest.mark.parametrize("outcome", ["ABNORMAL", "CLOSED"])
def test_abnormal_and_closed_refunds_are_shown_to_operations(flow, outcome):
    order_id = paid_pickup(flow)
    cancel(flow, order_id)
    flow.sandbox.wechat_pay.knobs.refund_outcome = outcome
    assert ask(flow, order_id) == ["applied"]
    assert flow.platform_notifies() == [200]
    [refund] = refunds_of(flow, order_id)
    assert refund.status == outcome.lower() and refund.detail
    assert flow.order(order_id).status == S.CANCELLED
    with flow.ctx.uow() as uow:
        assert [r.refund_no for r in refunds.needing_operator(uow)] == [refund.refund_no]


def test_a_signed_success_answer_refunds_at_once_and_the_later_notification_changes_nothing(flow):
    order_id = paid_pickup(flow)
    cancel(flow, order_id)
    flow.sandbox.wechat_pay.knobs.refund_answer = "SUCCESS"
    assert ask(flow, order_id) == ["applied"]
    assert flow.order(order_id).status == S.REFUNDED
    before = transitions(flow, order_id)
    assert flow.platform_notifies() == [200]
    assert transitions(flow, order_id) == before and before[-1] == S.REFUNDED
    assert [r.status for r in refunds_of(flow, order_id)] == ["success"]


def transitions(flow, order_id: str) -> list[str]:
    with flow.ctx.uow() as uow:
        return [t.to_status for t in orders.get(uow, order_id).transitions]


# -- the refund asked once, whatever happens around the call ----------------------------------------

def test_a_refund_the_platform_took_before_a_crash_is_asked_again_by_the_same_number_and_paid_once(flow):
    order_id = paid_pickup(flow)
    cancel(flow, order_id)
    [row] = refunds_of(flow, order_id)
    # The consumer's call reached the platform, then the hub died before recording the answer.
    from hub.domain.model import RefundRequest
    flow.ctx.connectors.payment().request_refund(RefundRequest(
        row.refund_no, order_id, row.payment_ref, row.paid_fen, row.amount_fen, row.reason,
        "http://127.0.0.1:8000/callbacks/wechat_pay"))
    assert ask(flow, order_id) == ["applied"]           # the redelivered event
    [(number, _, amount, _)] = at_platform(flow)
    assert (number, amount) == (row.refund_no, 25600)
    assert flow.sandbox.wechat_pay.refunds[number].asked == 2
    assert flow.platform_notifies() == [200]            # one refund, one notification
    assert flow.order(order_id).status == S.REFUNDED


def test_a_platform_that_keeps_failing_parks_the_refund_and_a_replay_asks_by_the_same_number(flow):
    order_id = paid_pickup(flow)
    cancel(flow, order_id)
    pay = flow.sandbox.wechat_pay
    pay.faults.fail_next, pay.faults.error_status = 1000, 503
    [envelope] = flow.events("order.refund_due", order_id=order_id)
    outcome = handle_once(flow.ctx, CONSUMER, envelope, backoff=0.0)
    assert outcome.status == "parked" and pay.refunds == {}
    [row] = refunds_of(flow, order_id)
    assert row.status == "requested"                    # nothing refused: it will be asked again
    pay.faults.fail_next = 0
    [letter] = [d for d in dead_letters(flow.ctx) if d.target == CONSUMER.name]
    assert replay(flow.ctx, letter.id, handlers.BY_NAME)
    assert list(pay.refunds) == [row.refund_no]
    assert [r.status for r in refunds_of(flow, order_id)] == ["processing"]


def test_a_refused_refund_is_failed_parked_and_shown_to_operations(flow):
    order_id = flow.place("pickup", [("TEA-001", 1, 12800)], store_id="S001")
    with flow.ctx.uow() as uow:             # paid at a backend the platform does not know
        orders.mark_paid(uow, orders.get(uow, order_id, lock=True), "miniprogram", "tx-unknown")
        uow.commit()
    cancel(flow, order_id)
    [envelope] = flow.events("order.refund_due", order_id=order_id)
    outcome = handle_once(flow.ctx, CONSUMER, envelope, backoff=0.0)
    assert outcome.status == "parked" and "RESOURCE_NOT_EXISTS" in outcome.error
    [row] = refunds_of(flow, order_id)
    assert row.status == "failed" and "RESOURCE_NOT_EXISTS" in row.detail
    with flow.ctx.uow() as uow:
        assert [r.refund_no for r in refunds.needing_operator(uow)] == [row.refund_no]
    assert flow.order(order_id).status == S.CANCELLED


def test_the_bare_payload_another_flow_emits_works_and_keeps_one_number_across_replays(flow):
    """`{"order_id", "payment_ref"}` (+ optional amount_fen, reason), as a returned delivery will emit it."""
    order_id = paid_pickup(flow)
    with flow.ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        uow.emit(events.OrderRefundDue(order_id, order.payment_ref))
        uow.emit(events.OrderRefundDue(order_id, order.payment_ref, amount_fen=300, reason="returned: one box dented"))
        uow.commit()
    pay = flow.sandbox.wechat_pay
    pay.faults.fail_next, pay.faults.error_status = 1000, 503
    bare, partial = flow.events("order.refund_due", order_id=order_id)
    assert handle_once(flow.ctx, CONSUMER, partial, backoff=0.0).status == "parked"
    [first] = refunds_of(flow, order_id)
    assert (first.amount_fen, first.reason) == (300, "returned: one box dented")
    pay.faults.fail_next = 0
    [letter] = [d for d in dead_letters(flow.ctx) if d.target == CONSUMER.name]
    assert replay(flow.ctx, letter.id, handlers.BY_NAME)
    assert handle_once(flow.ctx, CONSUMER, bare).status == "applied"       # default: all that is left
    assert handle_once(flow.ctx, CONSUMER, bare).status == "duplicate"
    rows = refunds_of(flow, order_id)
    assert [(r.refund_no, r.amount_fen) for r in rows] == [(first.refund_no, 300), (rows[1].refund_no, 25300)]
    assert sorted(pay.refunds) == sorted(r.refund_no for r in rows)
    assert flow.platform_notifies() == [200, 200]
    assert flow.order(order_id).status == S.REFUNDED          # 300 + 25,300: every fen back


def test_no_transaction_is_open_while_the_platform_is_asked(pg_flow):
    """A slow platform holds up nothing: the order can be locked and changed while the refund is in flight."""
    order_id = paid_pickup(pg_flow)
    cancel(pg_flow, order_id)
    [envelope] = pg_flow.events("order.refund_due", order_id=order_id)
    pg_flow.sandbox.wechat_pay.faults.latency_s = 2.0
    try:
        asking = threading.Thread(target=handle_once, args=(pg_flow.ctx, CONSUMER, envelope), daemon=True)
        asking.start()
        time.sleep(0.5)
        with pg_flow.ctx.uow() as uow:          # lock_timeout: a held lock fails this instead of waiting
            uow.session.execute(__import__("sqlalchemy").text("SET LOCAL lock_timeout = '500ms'"))
            order = orders.get(uow, order_id, lock=True)
            order.buyer = {**order.buyer, "note": "called the hotline"}
            uow.commit()
        still_asking = asking.is_alive()
        asking.join(10)
    finally:
        pg_flow.sandbox.wechat_pay.faults.latency_s = 0.0
    assert still_asking, "the order change waited for the platform's answer"
    assert [r.status for r in refunds_of(pg_flow, order_id)] == ["processing"]


def test_embedded_mode_writes_while_the_platform_is_asked(tmp_path, sandbox):
    ctx = make_ctx("sqlite", tmp_path)
    flow = make_flow(ctx, sandbox)
    order_id = paid_pickup(flow)
    cancel(flow, order_id)
    [envelope] = flow.events("order.refund_due", order_id=order_id)
    sandbox.wechat_pay.faults.latency_s = 2.0
    try:
        asking = threading.Thread(target=handle_once, args=(flow.ctx, CONSUMER, envelope), daemon=True)
        asking.start()
        time.sleep(0.5)
        other = paid_pickup(flow, qty=1)          # a whole order placed and paid meanwhile
        still_asking = asking.is_alive()
        asking.join(10)
    finally:
        sandbox.wechat_pay.faults.latency_s = 0.0
        ctx.engine.dispose()
    assert still_asking, "the write waited for the platform's answer (SQLite's writer lock held)"
    assert other


def test_a_refund_whose_notification_was_lost_is_followed_up_with_the_platform(flow):
    order_id = paid_pickup(flow)
    cancel(flow, order_id)
    assert ask(flow, order_id) == ["applied"]
    assert len(flow.sandbox.wechat_pay.take_refund_notifications()) == 1      # lost on its way to the hub
    assert refund_flow.follow_up(flow.ctx) == []                                # taken just now: not yet
    [row] = refunds_of(flow, order_id)
    assert flow.sandbox.wechat_pay.requests_to(f"/v3/refund/domestic/refunds/{row.refund_no}") == []
    later = utcnow() + refund_flow.FOLLOW_UP_AFTER + timedelta(minutes=1)
    [number] = refund_flow.follow_up(flow.ctx, now=later)
    assert [(r.refund_no, r.status) for r in refunds_of(flow, order_id)] == [(number, "success")]
    assert flow.order(order_id).status == S.REFUNDED
    assert refund_flow.follow_up(flow.ctx, now=later) == []                     # settled: never asked again

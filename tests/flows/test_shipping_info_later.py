"""WeChat's 10060001 (the payment is not yet visible to the shipping service) lasts up to about a minute:
the upload is tried again later by the scheduler's timer (`consumers.retry_due`), never slept through in a
worker, and parked only once that minute has passed."""
from __future__ import annotations

from datetime import timedelta

from hub import handlers
from hub.consumers import dead_letters, retry_due
from hub.storage.tables import RetryDue, utcnow


def ready_pickup(flow) -> str:
    order_id = flow.place("pickup", [("CUP-002", 1, 4500)], store_id="S002")
    flow.pay(order_id)
    flow.move(order_id, "picking", "picked", "ready_for_pickup")
    return order_id


def look(flow, start, elapsed: int):
    """The scheduler's timer looking `elapsed` seconds (and a little) after the first try."""
    return retry_due(flow.ctx, handlers.BY_NAME, now=start + timedelta(seconds=elapsed + 1))


def waiting(flow) -> list[RetryDue]:
    with flow.ctx.reader() as uow:
        return list(uow.session.query(RetryDue))


def test_an_upload_while_the_payment_is_invisible_for_40s_is_made_once_later_without_a_dead_letter(flow):
    pay, clock = flow.sandbox.wechat_pay, [1000.0]
    pay.clock = lambda: clock[0]
    pay.knobs.payment_invisible_for_s = 40
    order_id = ready_pickup(flow)
    start = utcnow()

    [first] = flow.deliver(handlers.SHIPPING_INFO_UPLOAD, "order.status_changed", order_id=order_id,
                           to="ready_for_pickup")
    assert first.status == "deferred" and "10060001" in first.error
    assert len(pay.requests_to("/wxa/sec/order/upload_shipping_info")) == 1     # not slept through in-line
    assert retry_due(flow.ctx, handlers.BY_NAME, now=start) == []               # not due yet

    statuses = []
    for elapsed in (10, 20, 30, 40, 50):          # the timer's looks, as the simulated minute passes
        clock[0] = 1000.0 + elapsed
        statuses += [o.status for o in look(flow, start, elapsed)]
    assert statuses == ["deferred", "deferred", "deferred", "applied"]
    [upload] = pay.shipping_uploads
    assert upload["logistics_type"] == 4
    assert waiting(flow) == [] and dead_letters(flow.ctx) == []
    # The event again (a redelivery) tells WeChat nothing new.
    assert [o.status for o in flow.deliver(handlers.SHIPPING_INFO_UPLOAD, "order.status_changed",
                                           order_id=order_id, to="ready_for_pickup")] == ["duplicate"]
    assert len(pay.shipping_uploads) == 1


def test_a_payment_still_invisible_after_the_minute_is_parked_as_before(flow):
    pay, clock = flow.sandbox.wechat_pay, [1000.0]
    pay.clock = lambda: clock[0]
    pay.knobs.payment_invisible_for_s = 600
    order_id = ready_pickup(flow)
    start = utcnow()
    [first] = flow.deliver(handlers.SHIPPING_INFO_UPLOAD, "order.status_changed", order_id=order_id,
                           to="ready_for_pickup")
    assert first.status == "deferred"

    statuses = []
    for elapsed in range(10, 80, 10):
        clock[0] = 1000.0 + elapsed
        statuses += [o.status for o in look(flow, start, elapsed)]
    assert statuses[-1] == "parked" and set(statuses[:-1]) == {"deferred"}
    [letter] = dead_letters(flow.ctx)
    assert letter.target == "shipping_info_upload" and "10060001" in letter.error
    assert waiting(flow) == [] and pay.shipping_uploads == []

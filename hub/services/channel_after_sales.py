"""A buyer's after-sales request (售后) made in a channel that runs its own (the WeChat shop), decided by the hub
and followed to its end.

The channel pays the buyer back itself once the merchant agrees, so the hub never asks its payment platform: a
request is a refund row under the after-sale's own number (cause `after_sale`), `requested` until the channel
says the money went back (then `success`, and every fen back moves the order to `refunded` as any refund does:
`services/refunds.advance`). The decision is the hub's refund rules: a paid order, an amount that fits what is
left of its payment. A request that does not fit is recorded `failed` with the reason (operations see it) and
rejected. Either answer goes to the channel through `channel.after_sale_answer_due` (`flows/channel_after_sales.py`),
committed with the row, so a repeated push decides nothing twice.
"""
from __future__ import annotations

import logging
from datetime import datetime

from hub import events
from hub.domain import refunds as rules
from hub.domain.refunds import RefundStatus as R
from hub.ports import AfterSale
from hub.services import money_owed, orders, refunds
from hub.storage.tables import OrderRow, RefundRow
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
AFTER_SALE = "after_sale"             # the refund row's cause
# The channel's word on a request the hub recorded -> the refund's status (forward only).
FOLLOWS = {"accepted": None, "refunded": R.SUCCESS, "rejected": R.CLOSED, "cancelled": R.CLOSED,
           "failed": R.ABNORMAL}


def refund_no(system: str, after_sale_id: str) -> str:
    return f"AS-{system}-{after_sale_id}"[:64]


def refusal(uow: UnitOfWork, order: OrderRow, sale: AfterSale) -> str | None:
    """Why the hub would not agree to the request; None when it may."""
    if order.paid_at is None or not order.payment_ref:
        return "the order was never paid"
    left = rules.remaining(order.total_fen, [(r.amount_fen, r.status)
                                             for r in money_owed.of_payment(uow, order.id, order.payment_ref)])
    if sale.amount_fen <= 0:
        return "nothing to refund"
    if sale.amount_fen > left:
        return f"asks {sale.amount_fen} fen back, {left} fen of the payment is left to refund"
    return None


def apply(uow: UnitOfWork, system: str, order: OrderRow, sale: AfterSale, now: datetime) -> RefundRow | None:
    """The channel's after-sale as it is now: a new request decided (and its answer emitted), a decided one
    followed; a repeat changes nothing."""
    # The order's row locked first: two requests on one order decided at once each read what was left before
    # the other wrote its refund (both agreed, more than was paid); serialised here, the second sees the first.
    order = orders.get(uow, order.id, lock=True)
    number = refund_no(system, sale.after_sale_id)
    row = refunds.by_no(uow, number)
    if row is None:
        if sale.status != "requested":
            # Decided in the channel's back office without the hub: the money's truth is still recorded.
            if sale.status != "refunded":
                return None
            row = money_owed.record(uow, order, payment_ref=order.payment_ref or number, paid_fen=order.total_fen,
                                    cause=AFTER_SALE, source=system, reason=sale.reason or "after-sales",
                                    status=R.PROCESSING, amount_fen=sale.amount_fen, refund_no=number)
            refunds.advance(uow, row, R.SUCCESS, system, now)
            return row
        why = refusal(uow, order, sale)
        row = money_owed.record(uow, order, payment_ref=order.payment_ref or number, paid_fen=order.total_fen,
                                cause=AFTER_SALE, source=system, reason=sale.reason or "after-sales request",
                                amount_fen=sale.amount_fen if why is None else max(sale.amount_fen, 0),
                                status=R.REQUESTED if why is None else R.FAILED, refund_no=number)
        if why is not None:
            row.detail = f"rejected in {system}: {why}"
            log.warning("order %s: after-sale %s rejected: %s", order.id, sale.after_sale_id, why)
        uow.emit(events.ChannelAfterSaleAnswerDue(order.id, system, sale.after_sale_id, accept=why is None,
                                           reason=why or ""))
        return row
    status = FOLLOWS.get(sale.status)
    if status is not None and not (sale.status == "rejected" and row.status == R.FAILED):   # ours: reason kept
        refunds.advance(uow, row, status, system, now)
    return row

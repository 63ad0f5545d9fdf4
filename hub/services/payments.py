"""Money the platforms report: a payment notification (paid; refund outcomes go to services/refunds.py)
and a channel's own word that it refunded an order."""
from __future__ import annotations

import logging

from hub.domain.model import PaymentNotice
from hub.domain.order_states import OrderStatus, allowed
from hub.domain.refunds import RefundStatus
from hub.domain.refunds import remaining as left_to_refund
from hub.services import money_owed, orders, refunds
from hub.storage.tables import OrderRow
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus
REFUND_EVENTS = ("refunded", "refund_abnormal", "refund_closed")   # the platform's word on a refund


def refunded(uow: UnitOfWork, order: OrderRow, source: str, detail: str) -> None:
    """A channel that settles its own money (the shop) says it refunded the whole order. Once; the refund is
    recorded on the order (settled), so nothing more is owed for it. (WeChat Pay's go through services/refunds.py.)

    Goods with the buyer (collected, delivered, completed) or back (returned): refunded, money only — no stock
    moves. Goods never left: cancelled first (the reservation released), then refunded. A rider booked: his
    courier is asked to cancel (then cancelled, refunded). Goods on their way: the order goes on."""
    if order.status == S.REFUNDED:
        return
    _record_channel_refund(uow, order, source, detail)
    if order.status == S.CANCELLED or allowed(order.fulfillment_type, order.status, S.REFUNDED):
        if order.paid_at is not None:
            orders.transition(uow, order, S.REFUNDED, source, detail)
        return                         # never paid: cancelled is as far as it goes
    if order.status != S.CANCEL_REQUESTED and allowed(order.fulfillment_type, order.status, S.CANCELLED):
        # Not orders.cancel: that would ask for a refund the platform has already made.
        orders.transition(uow, order, S.CANCELLED, source, detail)
        if order.paid_at is not None:
            orders.transition(uow, order, S.REFUNDED, source, detail)
        return
    if not orders.cancel_paid_back(uow, order, source, detail):   # cancel_requested: his answer decides
        # The goods are with the rider or on their way: a retry would not change that. Operations see
        # the refund on the order; its journey goes on.
        log.warning("order %s refunded by %s while %s: status left alone", order.id, source, order.status)


def _record_channel_refund(uow: UnitOfWork, order: OrderRow, source: str, detail: str) -> None:
    """The channel's refund of what was left of the payment, as a settled refund row."""
    if order.paid_at is None or not order.payment_ref:
        return
    held = [(r.amount_fen, r.status) for r in money_owed.of_payment(uow, order.id, order.payment_ref)]
    left = left_to_refund(order.total_fen, held)
    if left:
        money_owed.record(uow, order, payment_ref=order.payment_ref, paid_fen=order.total_fen, cause="channel",
                          source=source, reason=detail, status=RefundStatus.SUCCESS, amount_fen=left)


def apply_notice(uow: UnitOfWork, notice: PaymentNotice, source: str) -> None:
    """A verified notification from the payment platform, applied to its order (a repeat changes nothing)."""
    order = orders.get(uow, notice.order_ref, lock=True)
    if notice.event == "paid":
        orders.mark_paid(uow, order, source, notice.transaction_id, notice.amount_fen, notice.at,
                         payer_id=notice.payer_id)
    elif notice.event in REFUND_EVENTS:
        refunds.apply_notice(uow, notice, source)
    else:
        log.info("%s: ignored notification %s for order %s", source, notice.event, order.id)

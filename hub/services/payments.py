"""Money the platforms report: a payment notification (paid; refund outcomes go to services/refunds.py)
and a channel's own word that it refunded an order."""
from __future__ import annotations

import logging

from hub.domain.errors import IllegalTransition
from hub.domain.model import PaymentNotice
from hub.domain.order_states import OrderStatus, allowed
from hub.services import orders, refunds
from hub.storage.tables import OrderRow
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus
REFUND_EVENTS = ("refunded", "refund_abnormal", "refund_closed")   # the platform's word on a refund


def refunded(uow: UnitOfWork, order: OrderRow, source: str, detail: str) -> None:
    """A channel that settles its own money (the shop) says it refunded the whole order: cancel first
    if the goods never left, then refunded. Once. (WeChat Pay's refunds go through services/refunds.py.)"""
    if order.status == S.REFUNDED:
        return
    if order.status != S.CANCELLED and not allowed(order.fulfillment_type, order.status, S.REFUNDED):
        if not allowed(order.fulfillment_type, order.status, S.CANCELLED):
            raise IllegalTransition(order.id, order.status, S.REFUNDED, order.fulfillment_type)
        # Not orders.cancel: that would ask for a refund the platform has already made.
        orders.transition(uow, order, S.CANCELLED, source, detail)
    if order.paid_at is None:
        return                         # never paid: cancelled is as far as it goes
    orders.transition(uow, order, S.REFUNDED, source, detail)


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

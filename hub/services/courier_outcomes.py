"""Courier outcomes off the forward path: a buyer's cancel request answered, a failed delivery.

`cancel_requested` (hub/domain/order_states.py) holds the stock until the courier answers:
- accepted (the cancel call succeeded, or the courier reports the booking cancelled) -> cancelled:
  the reservation released, the refund due;
- refused (code 2050: the rider is delivering; or a report that the rider has the goods) -> the order
  goes back to where it was and on as the courier reports; operations see it (metric, log, the
  transition's detail in the console's order timeline).
A failed delivery: returning, then returned with the goods back in the stock they left (the store's,
or the warehouse's for express) and the refund due.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from hub.domain.model import TrackingEvent, TrackingStatus
from hub.domain.order_states import OrderStatus, allowed
from hub.metrics import METRICS
from hub.services import orders
from hub.storage.tables import OrderRow, OrderTransition, Shipment
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus
T = TrackingStatus

GAVE_UP = {T.CANCELLED, T.EXPIRED}
# The rider has the goods (or had them): a pending cancel request can no longer be met.
GOODS_LEFT = {T.COLLECTED, T.IN_TRANSIT, T.OUT_FOR_DELIVERY, T.DELIVERED, T.RETURNING, T.RETURNED}


def settle(uow: UnitOfWork, order: OrderRow, shipment: Shipment, event: TrackingEvent) -> bool:
    """Apply a (confirmed) report that concerns a cancel request or a failed delivery. True if it was
    one and nothing more is to be done; False to let the report move the order forward as usual."""
    if order.status == S.CANCEL_REQUESTED:
        if event.status in GAVE_UP:
            shipment.active, shipment.status = False, str(event.status)
            cancel_accepted(uow, order, event.carrier, f"{event.carrier}: booking {event.status}", event.at)
            return True
        if event.status not in GOODS_LEFT:
            return True           # the rider is coming or waiting: the courier's answer to the cancel decides
        cancel_refused(uow, order, event.carrier, f"{event.carrier}: the rider has the goods ({event.status})",
                       event.at)
    if event.status in (T.RETURNING, T.RETURNED):
        failed_delivery(uow, order, S(str(event.status)), event.carrier, event.at)
        return True
    return False


def cancel_accepted(uow: UnitOfWork, order: OrderRow, source: str, detail: str,
                    at: datetime | None = None) -> bool:
    """The courier let the booking go: cancelled, stock released, refund due. Once."""
    if order.status != S.CANCEL_REQUESTED:
        return False
    orders.cancel_now(uow, order, source, f"cancel accepted ({detail})")
    if orders.paid_back(uow, order):          # the money went back before the courier answered (cancel_paid_back)
        orders.transition(uow, order, S.REFUNDED, source, "the payment was already refunded in full", at)
    METRICS.cancel_requests.labels("accepted").inc()
    log.info("order %s: cancel request accepted by %s", order.id, source)
    return True


def cancel_refused(uow: UnitOfWork, order: OrderRow, source: str, detail: str,
                   at: datetime | None = None) -> bool:
    """The courier could not cancel: back to where the order was (the stock still held). Once."""
    if order.status != S.CANCEL_REQUESTED:
        return False
    before = uow.session.execute(
        select(OrderTransition.from_status).where(OrderTransition.order_id == order.id,
                                                  OrderTransition.to_status == S.CANCEL_REQUESTED)
        .order_by(OrderTransition.id.desc()).limit(1)).scalar_one_or_none() or S.RIDER_ASSIGNED
    orders.transition(uow, order, before, source, f"cancel refused, delivery goes on ({detail})", at)
    METRICS.cancel_requests.labels("refused").inc()
    # For operations: the buyer asked to cancel and will get the goods (or can refuse them at the door).
    log.warning("order %s: the buyer's cancel was refused by the courier (%s); the delivery goes on", order.id,
                detail)
    return True


def failed_delivery(uow: UnitOfWork, order: OrderRow, target: S, source: str, at: datetime | None = None) -> bool:
    """returning, or returned: the goods on-hand again where they left from, and the money owed."""
    if order.status == target or (target == S.RETURNING and order.status == S.RETURNED) or (
            target == S.RETURNED and orders.has_been(order, S.RETURNED)):
        return False                    # reported again: the goods came back once
    if not allowed(order.fulfillment_type, order.status, target) or not orders.goods_out(order):
        log.warning("order %s is %s: a %s report moves nothing", order.id, order.status, target)
        return False
    detail = ("delivery failed; the goods are on their way back" if target == S.RETURNING
              else f"delivery failed; the goods are back at {order.location_id}")
    orders.transition(uow, order, target, source, detail, at)
    if target == S.RETURNED:
        orders.returned_owing(uow, order, source, detail, at)
    return True

"""Nearby delivery: book a local rider when the order is allocated (again after a courier
cancelled or let the booking expire), and cancel the booking when the order is cancelled.

An order has at most one active shipment. Both `order.status_changed -> allocated` and
`shipment.rebook_needed` ask for a booking; whichever runs first books (under the order's
lock), the other finds the order dispatched and does nothing.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.consumers import consumer
from hub.domain.order_states import OrderStatus
from hub.flows import callback_url, reacts
from hub.services import orders
from hub.storage.tables import OrderRow, Shipment, utcnow
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus
COURIER = "local_delivery"


def active_shipment(uow: UnitOfWork, order_id: str) -> Shipment | None:
    stmt = (select(Shipment).where(Shipment.order_id == order_id, Shipment.active.is_(True))
            .order_by(Shipment.id.desc()))
    return uow.session.execute(stmt).scalars().first()


def book_rider(ctx: HubContext, uow: UnitOfWork, order: OrderRow) -> Shipment | None:
    """Quote and book a rider from the order's store, then mark it dispatched. None if not due."""
    if order.status != S.ALLOCATED or active_shipment(uow, order.id) is not None:
        return None
    store = ctx.config.location(order.location_id or "")
    if store is None:
        raise LookupError(f"order {order.id} has no store to deliver from ({order.location_id!r})")
    courier = ctx.connectors[COURIER]
    quote = courier.quote(orders.snapshot(order), store, callback_url(ctx.config, courier.name))
    # A crash after `book` and before the commit leaves a booking the hub does not know; the
    # courier then refuses a new quote for the order (already booked) and the retry is parked
    # for an operator, rather than a second rider being sent.
    booking = courier.book(quote)
    shipment = Shipment(order_id=order.id, kind="local", carrier=booking.carrier, shipment_ref=booking.shipment_ref,
                        status="booked", fee_fen=booking.fee_fen, active=True, created_at=utcnow())
    uow.session.add(shipment)
    orders.transition(uow, order, S.DISPATCHED, booking.carrier,
                      f"rider booked from {store.name} ({booking.shipment_ref}, fee {booking.fee_fen} fen)")
    log.info("delivery %s booked with %s as %s", order.id, booking.carrier, booking.shipment_ref)
    return shipment


def cancel_rider(ctx: HubContext, uow: UnitOfWork, order: OrderRow, reason: str) -> Shipment | None:
    """Cancel the order's active local booking, if any (cancelling twice is fine at the courier)."""
    shipment = active_shipment(uow, order.id)
    if shipment is None or shipment.kind != "local":
        return None
    ctx.connectors[shipment.carrier].cancel(order.id, reason)
    shipment.active, shipment.status = False, "cancelled"
    log.info("delivery %s: booking %s cancelled", order.id, shipment.shipment_ref)
    return shipment


@reacts("fulfilment.local_delivery", fulfillment=["delivery"], to=[S.ALLOCATED, S.CANCELLED])
def on_delivery_status(ctx: HubContext, uow: UnitOfWork, data: dict[str, Any]) -> None:
    order = orders.get(uow, data["order_id"], lock=True)
    if data["to"] == S.CANCELLED:
        cancel_rider(ctx, uow, order, "order cancelled")
    else:
        book_rider(ctx, uow, order)


@consumer("fulfilment.rebook_courier")
def on_rebook_needed(ctx: HubContext, uow: UnitOfWork, data: dict[str, Any]) -> None:
    order = orders.get(uow, data["order_id"], lock=True)
    if book_rider(ctx, uow, order) is None:
        log.info("delivery %s: no re-booking needed (now %s)", order.id, order.status)

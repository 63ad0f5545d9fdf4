"""Nearby delivery: book a local rider when the order is allocated (again after a courier
cancelled or let the booking expire), and cancel the booking when the order is cancelled.

An order has at most one active shipment. Both `order.status_changed -> allocated` and
`shipment.rebook_needed` ask for a booking; whichever records first (under the order's lock,
after the courier answered — no transaction is open during the call) wins, the other finds the
order dispatched and does nothing.
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
from hub.storage.tables import Shipment, utcnow
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus


def active_shipment(uow: UnitOfWork, order_id: str) -> Shipment | None:
    stmt = (select(Shipment).where(Shipment.order_id == order_id, Shipment.active.is_(True))
            .order_by(Shipment.id.desc()))
    return uow.session.execute(stmt).scalars().first()


def book_rider(ctx: HubContext, order_id: str) -> Shipment | None:
    """Quote and book a rider from the order's store, then mark it dispatched. None if not due.

    Read and commit, call the courier, then record in a new transaction that checks the order again.
    """
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        if order.status != S.ALLOCATED or active_shipment(uow, order.id) is not None:
            return None
        store = ctx.config.location(order.location_id or "")
        if store is None:
            raise LookupError(f"order {order.id} has no store to deliver from ({order.location_id!r})")
        snap = orders.snapshot(order)
    courier = ctx.connectors.local_courier()
    quote = courier.quote(snap, store, callback_url(ctx.config, courier.name))
    # A crash after `book` and before the record leaves a booking the hub does not know; the
    # courier then refuses a new quote for the order (already booked) and the retry is parked
    # for an operator, rather than a second rider being sent.
    booking = courier.book(quote)
    with ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        current = active_shipment(uow, order.id)
        if order.status == S.ALLOCATED and current is None:
            shipment = Shipment(order_id=order.id, kind="local", carrier=booking.carrier,
                                shipment_ref=booking.shipment_ref, status="booked", fee_fen=booking.fee_fen,
                                active=True, created_at=utcnow())
            uow.session.add(shipment)
            orders.transition(uow, order, S.DISPATCHED, booking.carrier,
                              f"rider booked from {store.name} ({booking.shipment_ref}, fee {booking.fee_fen} fen)")
            uow.commit()
            log.info("delivery %s booked with %s as %s", order.id, booking.carrier, booking.shipment_ref)
            return shipment
        status = order.status
    if status == S.CANCELLED:           # cancelled while the courier was called: nobody else will cancel it
        courier.cancel(order_id, "order cancelled")
        log.info("delivery %s: cancelled while booking; booking %s cancelled", order_id, booking.shipment_ref)
    else:
        log.warning("delivery %s: booked %s but the order is now %s (%s)", order_id, booking.shipment_ref, status,
                    f"active booking {current.shipment_ref}" if current else "no booking recorded")
    return None


def cancel_rider(ctx: HubContext, order_id: str, reason: str) -> Shipment | None:
    """Cancel the order's active local booking, if any (cancelling twice is fine at the courier)."""
    with ctx.reader() as uow:
        shipment = active_shipment(uow, order_id)
    if shipment is None or shipment.kind != "local":
        return None
    ctx.connectors[shipment.carrier].cancel(order_id, reason)
    with ctx.uow() as uow:
        row = uow.session.get(Shipment, shipment.id, with_for_update=True)
        row.active, row.status = False, "cancelled"
        uow.commit()
    log.info("delivery %s: booking %s cancelled", order_id, shipment.shipment_ref)
    return row


@reacts("fulfilment.local_delivery", fulfillment=["delivery"], to=[S.ALLOCATED, S.CANCELLED], calls_out=True)
def on_delivery_status(ctx: HubContext, data: dict[str, Any]) -> None:
    if data["to"] == S.CANCELLED:
        cancel_rider(ctx, data["order_id"], "order cancelled")
    else:
        book_rider(ctx, data["order_id"])


@consumer("fulfilment.rebook_courier", calls_out=True)
def on_rebook_needed(ctx: HubContext, data: dict[str, Any]) -> None:
    if book_rider(ctx, data["order_id"]) is None:
        log.info("delivery %s: no re-booking needed", data["order_id"])

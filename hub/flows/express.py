"""Express: waybill, tracking subscription, shipped (which commits the stock). A warehouse ships at once; a store
that ships parcels (`ships_express`) picks the order first, and the waybill is booked when it is picked — the
carrier's van never comes for a parcel nobody has packed.

The courier dedupes waybills on the hub's order id, so a retry after a crash gets the same
waybill back, and subscribing twice is harmless. When the courier stops pushing a waybill's
tracking (Kuaidi100's `status: abort`), operations see it (hub_express_tracking_stopped, a
warning naming the order) and the scheduler polls that waybill instead (`poll_stopped_tracking`).
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.config import LocationConfig
from hub.domain.order_states import OrderStatus
from hub.events import OrderStatusChanged
from hub.flows import callback_url
from hub.flows.delivery import active_shipment
from hub.metrics import METRICS
from hub.services import orders
from hub.services.tracking import apply_tracking, record_stopped
from hub.storage.tables import Shipment, utcnow
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus


def due_status(origin: LocationConfig) -> S:
    """When a parcel is handed to the carrier: a warehouse's at once (allocated), a store's once picked."""
    return S.PICKED if origin.is_store else S.ALLOCATED


def ship_express(ctx: HubContext, order_id: str) -> Shipment | None:
    """Book the waybill and mark the order shipped. None when it is not (or not yet, or no longer) due."""
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        if order.status not in (S.ALLOCATED, S.PICKED) or active_shipment(uow, order.id) is not None:
            return None
        # Routing names the warehouse or store; a split shipment (if allowed) would need one waybill per origin.
        origin_ids = ({order.location_id} if order.location_id
                      else {line.location_id for line in order.lines if line.location_id is not None})
        status, snap = order.status, orders.snapshot(order)     # the picked lines, once a store picked
    origin = ctx.config.location(next(iter(origin_ids))) if len(origin_ids) == 1 else None
    if origin is None:
        raise LookupError(f"order {order_id}: one origin warehouse needed, have {sorted(origin_ids)}")
    if status != due_status(origin):
        log.info("express %s: %s; the waybill waits for %s's pick", order_id, status, origin.id)
        return None
    courier = ctx.connectors.express_courier_for(origin.id)
    booking = courier.create_waybill(snap, origin)           # deduped on the hub's order id
    address = snap.fulfillment.address
    courier.subscribe_tracking(booking.shipment_ref, callback_url(ctx.config, courier.name),
                               phone=(address.phone if address else "") or snap.buyer.phone)
    with ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        if order.status != due_status(origin) or active_shipment(uow, order.id) is not None:
            log.info("express %s: now %s; waybill %s not recorded again", order_id, order.status,
                     booking.shipment_ref)
            return None
        shipment = Shipment(order_id=order.id, kind="express", carrier=booking.carrier,
                            shipment_ref=booking.shipment_ref, status="booked", fee_fen=booking.fee_fen, active=True,
                            created_at=utcnow())
        uow.session.add(shipment)
        orders.transition(uow, order, S.SHIPPED, booking.carrier, f"waybill {booking.shipment_ref} from {origin.name}")
        uow.commit()
    log.info("express %s shipped from %s as waybill %s", order_id, origin.id, booking.shipment_ref)
    return shipment


def express_waybill(ctx: HubContext, event: OrderStatusChanged) -> None:
    ship_express(ctx, event.order_id)


def push_stopped(uow: UnitOfWork, carrier: str, waybill: str, reason: str, at: datetime | None = None) -> None:
    """The courier stopped pushing this waybill's tracking: poll it from now on, and say so — in the metric,
    the log and the order's history (`tracking.record_stopped`: a shipment event on the operator's timeline)."""
    shipment = uow.session.execute(select(Shipment).where(Shipment.carrier == carrier,
                                                          Shipment.shipment_ref == waybill)).scalar_one_or_none()
    if shipment is None:
        log.warning("express %s stopped tracking unknown waybill %s: %s", carrier, waybill, reason)
        return
    if shipment.tracking != "polling":
        METRICS.express_tracking_stopped.labels(carrier).inc()
    shipment.tracking = "polling"
    record_stopped(uow, shipment, f"{carrier} stopped tracking waybill {waybill} ({reason}); "
                                  "the hub polls it instead", at)
    log.warning("express order %s: %s stopped tracking waybill %s (%s); the hub polls it instead",
                shipment.order_id, carrier, waybill, reason)


def poll_stopped_tracking(ctx: HubContext) -> int:
    """Ask the courier for every active waybill it no longer pushes; how many new reports applied."""
    with ctx.reader() as uow:
        due = [(s.carrier, s.shipment_ref, s.order_id) for s in uow.session.execute(
            select(Shipment).where(Shipment.kind == "express", Shipment.active, Shipment.tracking == "polling",
                                   Shipment.status.not_in(["delivered", "cancelled", "expired"]))).scalars()]
    applied = 0
    for carrier, waybill, order_id in due:
        with ctx.reader() as uow:
            snap = orders.snapshot(orders.get(uow, order_id))
        address = snap.fulfillment.address
        phone = (address.phone if address else "") or snap.buyer.phone
        events = ctx.connectors.express_courier(carrier).poll_tracking(waybill, phone)
        with ctx.uow() as uow:
            applied += sum(apply_tracking(uow, ctx.config, e) for e in sorted(events, key=lambda e: e.at))
            uow.commit()
    return applied

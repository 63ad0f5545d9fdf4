"""Courier tracking into the order: record every report once, move the order forward
where the report implies it, never backwards.

A report is stored (and shown on the buyer's timeline) even when it moves nothing: a
duplicate is dropped silently, an older report arriving late is recorded but cannot undo
a newer state, and a report for a booking that was cancelled and re-booked moves nothing.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select

from hub import events
from hub.config import HubConfig
from hub.domain import timeline
from hub.domain.errors import NotFound, NotPlatformRider
from hub.domain.limits import is_ahead
from hub.domain.model import FulfillmentType, TrackingEvent, TrackingStatus
from hub.domain.order_states import OrderStatus, allowed
from hub.privacy import mask_phone, mask_phones_in
from hub.services import courier_outcomes, erp_feed, orders
from hub.storage.tables import OrderRow, Shipment, TrackingEventRow, utcnow
from hub.storage.uow import UnitOfWork
from hub.storage.upsert import insert_ignore

log = logging.getLogger(__name__)
S = OrderStatus
T = TrackingStatus

# The forward path of each courier-fulfilled order, and where each report takes it.
PATHS: dict[str, list[S]] = {
    FulfillmentType.DELIVERY: [S.ALLOCATED, S.DISPATCHED, S.RIDER_ASSIGNED, S.PICKED_UP, S.DELIVERED,
                               S.COMPLETED],
    FulfillmentType.EXPRESS: [S.ALLOCATED, S.SHIPPED, S.IN_TRANSIT, S.DELIVERED, S.COMPLETED],
}
TARGETS: dict[str, dict[T, S]] = {
    FulfillmentType.DELIVERY: {T.RIDER_ASSIGNED: S.RIDER_ASSIGNED, T.RIDER_AT_STORE: S.RIDER_ASSIGNED,
                               T.COLLECTED: S.PICKED_UP, T.IN_TRANSIT: S.PICKED_UP,
                               T.OUT_FOR_DELIVERY: S.PICKED_UP, T.DELIVERED: S.COMPLETED},
    FulfillmentType.EXPRESS: {T.COLLECTED: S.IN_TRANSIT, T.IN_TRANSIT: S.IN_TRANSIT,
                              T.OUT_FOR_DELIVERY: S.IN_TRANSIT, T.DELIVERED: S.COMPLETED},
}
COURIER_GAVE_UP = {T.CANCELLED, T.EXPIRED}


def timeline_detail(event: TrackingEvent) -> str:
    """What the buyer sees of a report: the courier's words, the rider with a masked phone."""
    # Couriers write phone numbers into their free text ("call 139…"): mask those too.
    parts = [mask_phones_in(event.detail)] if event.detail else []
    if event.rider_name or event.rider_phone:
        rider = " ".join(p for p in (event.rider_name or "", mask_phone(event.rider_phone)) if p)
        parts.append(f"rider {rider}")
    return "; ".join(parts)


def complete(uow: UnitOfWork, order: OrderRow, source: str, detail: str | None = None, at=None) -> bool:
    """Completed, and into the ERP's feed in the same transaction."""
    changed = orders.transition(uow, order, S.COMPLETED, source, detail, at)
    erp_feed.add_to_feed(uow, order.id)
    return changed


def _advance(uow: UnitOfWork, order: OrderRow, target: S, source: str, detail: str, at) -> None:
    """Move towards `target` by the longest legal steps; a target at or behind the order moves nothing."""
    path = PATHS[order.fulfillment_type]
    if order.status not in path or target not in path:
        return
    there = path.index(target)
    while (here := path.index(S(order.status))) < there:
        reachable = [s for s in path[here + 1:there + 1] if allowed(order.fulfillment_type, order.status, s)]
        if not reachable:
            return
        step = reachable[-1]
        if step == S.COMPLETED:
            complete(uow, order, source, "delivered", at)
        else:
            orders.transition(uow, order, step, source, detail or None, at)


def apply_platform_rider(uow: UnitOfWork, cfg: HubConfig, report: TrackingEvent) -> bool:
    """A channel's signed report on its own rider (the shipment is the channel's order id). An order of that
    channel that the platform's rider does not carry is refused for good (NotPlatformRider), nothing changed;
    an order not taken yet (or not handed to the rider yet) stays NotFound, so its re-push finds it later."""
    try:
        return apply_tracking(uow, cfg, report)
    except NotFound:
        channels = {ch.id for ch in cfg.channels if ch.publish_to == report.carrier} | {report.carrier}
        order = uow.session.execute(select(OrderRow).where(
            OrderRow.channel.in_(channels), OrderRow.external_id == report.shipment_ref)).scalars().first()
        if order is not None and order.rider != "platform":     # its rider, not handed over yet: asked again
            raise NotPlatformRider(f"{report.carrier} order {report.shipment_ref!r} (order {order.id}) is not "
                                   f"carried by {report.carrier}'s rider") from None
        raise


def apply_tracking(uow: UnitOfWork, cfg: HubConfig, event: TrackingEvent) -> bool:
    """Record one courier report and apply it. False for a duplicate; NotFound for an unknown booking."""
    session = uow.session
    shipment = session.execute(select(Shipment).where(Shipment.carrier == event.carrier,
                                                      Shipment.shipment_ref == event.shipment_ref)
                               .with_for_update()).scalar_one_or_none()
    if shipment is None:
        raise NotFound(f"no shipment {event.shipment_ref!r} with {event.carrier}")
    external_id = event.external_id or f"{event.status}:{event.at.isoformat()}"   # before any clamping
    now = utcnow()
    if is_ahead(event.at, now):
        # A courier's clock ahead of ours: kept as the newest report, its time would make every real
        # report after it "older than the last report". It happened by now at the latest.
        log.warning("tracking %s for %s dated %s, ahead of the hub's clock: recorded at %s", event.status,
                    event.shipment_ref, event.at.isoformat(), now.isoformat())
        event = replace(event, at=now)
    detail = timeline_detail(event)
    if not insert_ignore(session, TrackingEventRow, {
            "shipment_id": shipment.id, "order_id": shipment.order_id, "status": str(event.status), "at": event.at,
            "detail": detail, "external_id": external_id[:128], "recorded_at": utcnow()}):
        return False
    newest = shipment.last_event_at is None or event.at >= shipment.last_event_at
    if not (newest and shipment.active):
        log.info("tracking %s for %s recorded only (%s)", event.status, event.shipment_ref,
                 "booking no longer active" if not shipment.active else "older than the last report")
        return True
    before = _seen(shipment)
    shipment.status, shipment.last_event_at = str(event.status), event.at
    if event.rider_name:
        shipment.rider_name = event.rider_name
    if event.rider_phone:
        shipment.rider_phone = event.rider_phone
    if event.rider_lat is not None and event.rider_lng is not None:
        shipment.rider_lat, shipment.rider_lng = event.rider_lat, event.rider_lng
    order = orders.get(uow, shipment.order_id, lock=True)
    if _seen(shipment) != before:
        _tell_channel(uow, cfg, order, shipment)
    if order.fulfillment_type not in PATHS:
        return True
    if courier_outcomes.settle(uow, order, shipment, event):    # a cancel request answered, a failed delivery
        return True
    if event.status in COURIER_GAVE_UP:
        _rebook(uow, order, shipment, event)
        return True
    target = TARGETS[order.fulfillment_type].get(event.status)
    if target is not None:
        _advance(uow, order, target, event.carrier, detail, event.at)
    return True


def _seen(shipment: Shipment) -> tuple[object, ...]:
    """What a channel is told of a delivery: a report repeating all of it is no change to tell."""
    return (shipment.status, shipment.rider_name, shipment.rider_phone, shipment.rider_lat, shipment.rider_lng)


def _tell_channel(uow: UnitOfWork, cfg: HubConfig, order: OrderRow, shipment: Shipment) -> None:
    """An order a channel took itself, delivered by the store's courier: the channel is told the change
    (`flows/channel_orders.rider_to_channel`, in the same transaction as the report: once per change)."""
    channel = cfg.channel(order.channel)
    if channel is None or not channel.publish_to or not order.external_id or order.rider == "platform":
        return
    uow.emit(events.ShipmentChanged(order.id, shipment.id, shipment.status, shipment.rider_name,
                                    shipment.rider_phone, shipment.rider_lat, shipment.rider_lng,
                                    (shipment.last_event_at or utcnow()).isoformat()))


def _rebook(uow: UnitOfWork, order: OrderRow, shipment: Shipment, event: TrackingEvent) -> None:
    """The courier dropped the booking: back to allocated (stock still held) for a new one."""
    shipment.active = False
    if order.status in (S.DISPATCHED, S.RIDER_ASSIGNED):
        reason = f"{event.carrier} {event.status}" + (f": {event.detail}" if event.detail else "")
        orders.transition(uow, order, S.ALLOCATED, event.carrier, reason, event.at)
        uow.emit(events.ShipmentRebookNeeded(order.id, shipment.id, shipment.carrier, shipment.shipment_ref,
                                             str(event.status)))


# A shipment event that is no courier state: the carrier stopped pushing a waybill's tracking (Kuaidi100's
# `status: abort`), so the hub polls it. Operations' history, not the buyer's: left out of the buyer's timeline.
TRACKING_STOPPED = "tracking_stopped"
OPERATIONS_ONLY = frozenset({TRACKING_STOPPED})


def record_stopped(uow: UnitOfWork, shipment: Shipment, detail: str, at: datetime | None = None) -> bool:
    """The carrier stopped tracking this shipment: on the order's history as a report of its carrier, once
    per shipment (a re-sent abort is a duplicate). Moves nothing. False when it was recorded already."""
    now = utcnow()
    return insert_ignore(uow.session, TrackingEventRow, {
        "shipment_id": shipment.id, "order_id": shipment.order_id, "status": TRACKING_STOPPED, "at": at or now,
        "detail": mask_phones_in(detail)[:2000], "external_id": TRACKING_STOPPED, "recorded_at": now})


def order_timeline(uow: UnitOfWork, order: OrderRow, for_buyer: bool = True) -> list[timeline.Step]:
    """The order's changes and its couriers' reports as one story (`hub.domain.timeline.merge`).
    The buyer's has no booking or waybill numbers; an operator's keeps them."""
    changes = [timeline.Step(t.at, t.to_status, t.source, t.detail or "", t.id) for t in order.transitions]
    rows = uow.session.execute(
        select(TrackingEventRow, Shipment.carrier).join(Shipment, Shipment.id == TrackingEventRow.shipment_id)
        .where(TrackingEventRow.order_id == order.id)).all()
    reports = [timeline.Step(ev.at, ev.status, carrier, ev.detail or "", ev.id, ev.shipment_id) for ev, carrier in rows
               if not (for_buyer and ev.status in OPERATIONS_ONLY)]
    refs: list[str] = []
    if for_buyer:
        refs = list(uow.session.execute(select(Shipment.shipment_ref).where(Shipment.order_id == order.id)).scalars())
        # The platform's rider is booked under the platform's own order number: the buyer's, not a booking
        # number to take out (taking it out left "payment meituan:" on the paid step).
        refs = [r for r in refs if r != order.external_id]
    return timeline.merge(changes, reports, hide=refs)

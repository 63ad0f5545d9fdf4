"""A courier callback is a claim, not a fact.

Some couriers sign callbacks with public fields only (Dada: md5 of its order number, our order id
and a time), so anyone can post one. Before a callback moves an order:
1. `booking_of` — it must name a booking the hub made, for the order the booking is for;
2. the caller asks the courier's query API about that order (no transaction open meanwhile);
3. `confirmed` — the report the hub applies is what the query says, never what the claim says:
   its status, its rider; its time is the courier's, and never later than now (a forged future
   time would make every genuine report after it look older and freeze the order).
`settle` is that sequence as one use case, given the courier through its port.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.domain.errors import BadInput, NotFound
from hub.domain.model import CourierState, TrackingEvent
from hub.metrics import METRICS
from hub.ports import CourierCallbacks
from hub.services.tracking import apply_tracking
from hub.storage.tables import Shipment
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)


class CallbackMismatch(BadInput):
    """The callback's order is not its booking's order: forged, or a sender mixing up bookings."""

    code = "callback_mismatch"


@dataclass(frozen=True)
class BookingRef:
    order_id: str
    active: bool


def settle(ctx: HubContext, courier: CourierCallbacks, claim: TrackingEvent, now: datetime) -> TrackingEvent | None:
    """A rider's claim, settled: the report applied (None when nothing was).

    Its order must be its booking's (else CallbackMismatch, 422: a genuine courier never mixes them
    up, so only a forger or a broken sender gets it, and nothing is recorded); then only what the
    query says is applied, and the caller answers 200 even when the query contradicts the claim — a
    genuine report can be overtaken by the next step, and a retry would be contradicted the same way.
    A courier that cannot be asked raises from `query` (502), so the courier sends its callback again."""
    with ctx.reader() as uow:
        booking = booking_of(uow, claim)
    if not booking.active:
        # A dropped booking: the query answers for the order's current one, so this one cannot be confirmed.
        METRICS.courier_claims.labels(claim.carrier, "stale_booking").inc()
        return None
    report = confirmed(claim, courier.query(booking.order_id), now)     # no transaction open across the query
    if report is not None:
        with ctx.uow() as uow:
            apply_tracking(uow, ctx.config, report)
            uow.commit()
    return report


def booking_of(uow: UnitOfWork, claim: TrackingEvent) -> BookingRef:
    """The booking the claim names; NotFound for none, CallbackMismatch when it names another order."""
    shipment = uow.session.execute(select(Shipment).where(Shipment.carrier == claim.carrier,
                                                          Shipment.shipment_ref == claim.shipment_ref)
                                   ).scalar_one_or_none()
    if shipment is None:
        raise NotFound(f"no shipment {claim.shipment_ref!r} with {claim.carrier}")
    if claim.order_ref is not None and claim.order_ref != shipment.order_id:
        METRICS.courier_claims.labels(claim.carrier, "mismatch").inc()
        log.warning("%s callback for booking %s names order %s, not the booking's: refused", claim.carrier,
                    claim.shipment_ref, claim.order_ref)
        # Which order the booking is for is not the sender's business: not named in the answer.
        raise CallbackMismatch(f"booking {claim.shipment_ref} is not for order {claim.order_ref}")
    return BookingRef(shipment.order_id, bool(shipment.active))


def confirmed(claim: TrackingEvent, truth: CourierState | None, now: datetime) -> TrackingEvent | None:
    """The report to apply: the courier's word (`truth`) where the claim differs; None when the
    courier holds no such delivery (nothing is confirmed, nothing moves)."""
    if truth is None:
        METRICS.courier_claims.labels(claim.carrier, "unconfirmed").inc()
        log.warning("%s callback %s for %s: the courier's query knows no such delivery; ignored", claim.carrier,
                    claim.status, claim.shipment_ref)
        return None
    agrees = truth.status == claim.status
    METRICS.courier_claims.labels(claim.carrier, "confirmed" if agrees else "contradicted").inc()
    if not agrees:
        log.warning("%s callback for %s claims %s; the courier's query says %s: applying the query",
                    claim.carrier, claim.shipment_ref, claim.status, truth.status)
    at = truth.at or (claim.at if agrees else now)
    at = min(at, now)
    return TrackingEvent(
        carrier=claim.carrier, shipment_ref=claim.shipment_ref, status=truth.status, at=at,
        rider_name=truth.rider_name, rider_phone=truth.rider_phone, order_ref=truth.order_ref,
        rider_lat=truth.rider_lat, rider_lng=truth.rider_lng,
        # One id per booking, status and time, whichever callback led to it: each step recorded once.
        external_id=f"{claim.shipment_ref}:{truth.status}:{int(at.timestamp())}")


def report_of(shipment_ref: str, truth: CourierState, now: datetime) -> TrackingEvent:
    """The courier's word as a report, with no callback behind it (a cancel answered, a booking adopted)."""
    at = min(truth.at or now, now)
    return TrackingEvent(carrier=truth.carrier, shipment_ref=shipment_ref, status=truth.status, at=at,
                         rider_name=truth.rider_name, rider_phone=truth.rider_phone, order_ref=truth.order_ref,
                         rider_lat=truth.rider_lat, rider_lng=truth.rider_lng,
                         external_id=f"{shipment_ref}:{truth.status}:{int(at.timestamp())}")

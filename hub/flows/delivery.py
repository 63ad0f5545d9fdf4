"""Nearby delivery: book a local rider when the store's dispatch policy says (`locations[].dispatch`: when the
pick is complete — the default —, at payment, or `delay_s` after payment, through the scheduler's timer `book_due`;
again after a courier cancelled or let the booking expire), ask the courier to cancel when the buyer asks, and
cancel the booking when the order is cancelled.

An order has at most one active shipment. Both `order.status_changed -> allocated` and
`shipment.rebook_needed` ask for a booking; whichever records first (under the order's lock,
after the courier answered — no transaction is open during the call) wins, the other finds the
order dispatched and does nothing.

Booking asks the courier first, by order id: a booking it already holds (the hub crashed between
booking and recording) is adopted, never booked twice. The quote about to be booked is written
down first (an inactive `quoted` shipment), so such a booking can be recognised. After
`hub.max_courier_bookings` bookings for one order, the work is parked for an operator instead.

A courier the store's escalation switched away from (`flows/escalation.py`: nobody accepted) is not asked again
for that order. When no courier is left, or every one refuses the order, the store's `escalation.last` says what
follows: express from the store, or an operator (without an escalation policy: the first courier's refusal).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from hub.bootstrap import HubContext
from hub.config import DispatchPolicy, LocationConfig
from hub.domain import courier_choice
from hub.domain.errors import NeedsOperator
from hub.domain.model import CourierState, DeliveryQuote, OrderSnapshot, TrackingStatus
from hub.domain.order_states import OrderStatus
from hub.events import OrderStatusChanged, ShipmentRebookNeeded
from hub.flows import callback_url
from hub.metrics import METRICS
from hub.ports import ChannelRiders, LocalCourier, PermanentError, TransientError
from hub.services import courier_claims, courier_outcomes, courier_quotes, orders
from hub.services.tracking import apply_tracking
from hub.storage.tables import OrderRow, Shipment, utcnow
from hub.storage.uow import UnitOfWork, must_get

log = logging.getLogger(__name__)
S = OrderStatus
T = TrackingStatus
QUOTED = "quoted"                       # a quote about to be booked: not a booking yet
GONE = {T.CANCELLED, T.EXPIRED, T.PROBLEM}   # what the courier holds is no booking to adopt
OPERATOR_REBOOK = "operator_rebook"     # an operator replayed the escalation's operator step (flows/escalation.py)


def active_shipment(uow: UnitOfWork, order_id: str) -> Shipment | None:
    stmt = (select(Shipment).where(Shipment.order_id == order_id, Shipment.active.is_(True))
            .order_by(Shipment.id.desc()))
    return uow.session.execute(stmt).scalars().first()


def bookings_made(uow: UnitOfWork, order_id: str) -> int:
    """Riders booked for the order so far (quotes never booked do not count)."""
    return uow.session.execute(select(func.count()).select_from(Shipment).where(
        Shipment.order_id == order_id, Shipment.kind == "local", Shipment.status != QUOTED)).scalar_one()


# A rider may be booked while the order waits for (or is in) its pick, or once picked.
BOOKABLE = (S.ALLOCATED, S.PICKING, S.PICKED)


def due(policy: DispatchPolicy, order: OrderRow, now: datetime) -> bool:
    """The store's policy says the rider is booked now: the pick is done (a picked order, or one picked before
    a courier gave it back), or at payment, or `delay_s` after it."""
    if order.picked_at is not None or order.status == S.PICKED or policy.book == "at_payment":
        return True
    if policy.book == "after_payment" and order.paid_at is not None:
        return now >= order.paid_at + timedelta(seconds=policy.delay_s)
    return False


def book_rider(ctx: HubContext, order_id: str) -> Shipment | None:
    """Quote and book a rider from the order's store, then mark it dispatched. None if not due.

    Read and commit, call the courier, then record in a new transaction that checks the order again.
    """
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        if order.fulfillment_type != "delivery" or order.status not in BOOKABLE or \
                active_shipment(uow, order.id) is not None:
            return None                 # (handed to express meanwhile: the express flow ships it)
        store = ctx.config.location(order.location_id or "")
        if store is None:
            raise LookupError(f"order {order.id} has no store to deliver from ({order.location_id!r})")
        platform = _platform_rider(ctx, order)
        # The platform's rider is asked for once the pick is complete, whatever the store's policy: the
        # platform sends him when told the order is ready (its preparationMealComplete goes out then too).
        policy = DispatchPolicy(book="at_pick_complete") if platform is not None else store.dispatch
        if not due(policy, order, utcnow()):
            log.info("delivery %s: not booked yet (store %s books %s)", order.id, store.id, store.dispatch.book)
            return None
        snap = orders.snapshot(order)
        booked = bookings_made(uow, order.id)
        quoted_by = set(uow.session.execute(select(Shipment.carrier).where(
            Shipment.order_id == order.id, Shipment.kind == "local", Shipment.status == QUOTED)).scalars())
        switched = switched_from(uow, order.id)
        if "express" in escalations(uow, order.id):
            return None                 # escalation is handing it to express
    if platform is not None:
        return hand_to_platform(ctx, order_id, *platform)
    couriers = ctx.connectors.couriers(store.id)              # the store's, in its order
    if not couriers and store.escalation is None:
        raise LookupError(f"no local courier in config.yaml serves store {store.id}")
    # A courier that cannot be reached raises TransientError here: retried, then parked — never
    # taken for "no booking", which would book a second rider once it answers again.
    for courier in _may_hold(ctx, couriers, quoted_by):
        held = courier.query(order_id)
        if held is not None and held.status not in GONE:
            return adopt(ctx, order_id, held)
    cap = ctx.config.hub.max_courier_bookings
    if booked >= cap:
        METRICS.bookings_capped.labels(couriers[0].name if couriers else "none").inc()
        raise NeedsOperator(f"order {order_id} has had {booked} riders booked (hub.max_courier_bookings = {cap}); "
                            "an operator decides: book by hand and replay, or cancel the order")
    left = [c for c in couriers if c.name not in switched]
    quote = _choose_quote(ctx, left, snap, store) if left else None
    if quote is None:
        why = (f"every courier of store {store.id} was tried ({', '.join(sorted(switched))})" if not left
               else f"no courier of store {store.id} takes it")
        no_courier(ctx, order_id, store, why)
        return None
    courier = ctx.connectors.local_courier(quote.carrier)
    with ctx.uow() as uow:
        row = Shipment(order_id=order_id, kind="local", carrier=quote.carrier, shipment_ref=quote.quote_id,
                       status=QUOTED, fee_fen=quote.fee_fen, active=False, created_at=utcnow())
        uow.session.add(row)
        uow.commit()
        quoted_id = row.id
    booking = courier.book(quote)
    with ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        current = active_shipment(uow, order.id)
        shipment = must_get(uow.session, Shipment, quoted_id, lock=True)
        shipment.shipment_ref = booking.shipment_ref      # the courier's own number, where it gives one at booking
        if order.status in BOOKABLE and current is None:
            shipment.active, shipment.status, shipment.fee_fen = True, "booked", booking.fee_fen
            orders.transition(uow, order, S.DISPATCHED, booking.carrier,
                              f"rider booked from {store.name} with {booking.carrier} ({booking.shipment_ref}, "
                              f"fee {booking.fee_fen} fen, rule {store.courier_rule})")
            uow.commit()
            log.info("delivery %s booked with %s as %s", order.id, booking.carrier, booking.shipment_ref)
            return shipment
        uow.commit()
        status = order.status
    if status == S.CANCELLED:           # cancelled while the courier was called: nobody else will cancel it
        courier.cancel(order_id, "order cancelled")
        with ctx.uow() as uow:          # a rider was booked (and let go): it counts towards the cap
            must_get(uow.session, Shipment, quoted_id, lock=True).status = "cancelled"
            uow.commit()
        log.info("delivery %s: cancelled while booking; booking %s cancelled", order_id, booking.shipment_ref)
    else:
        log.warning("delivery %s: booked %s but the order is now %s (%s)", order_id, booking.shipment_ref, status,
                    f"active booking {current.shipment_ref}" if current else "no booking recorded")
    return None


def _platform_rider(ctx: HubContext, order: OrderRow) -> tuple[ChannelRiders, str] | None:
    """(the channel's connector, its order id) when the channel's own rider delivers the order."""
    if order.rider != "platform" or not order.external_id:
        return None
    channel = ctx.config.channel(order.channel)
    connector = ctx.connectors.channel(channel.publish_to) if channel and channel.publish_to else None
    if not isinstance(connector, ChannelRiders):
        raise LookupError(f"order {order.id} is for {order.channel}'s rider, but its connector has none to call")
    return connector, order.external_id


def hand_to_platform(ctx: HubContext, order_id: str, platform: ChannelRiders, external_id: str) -> Shipment | None:
    """The platform's rider delivers: the hub asks for him (Meituan's `order/logistics/push`, answered ok when
    repeated, so a redelivered event only asks again) and records the platform as the order's courier, its
    order id the shipment's; the platform's logistics pushes then move the order (`services/tracking.py`)."""
    platform.call_platform_rider(external_id)
    with ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        if order.status not in BOOKABLE or active_shipment(uow, order.id) is not None:
            uow.commit()
            return None
        existing = uow.session.execute(select(Shipment).where(
            Shipment.carrier == platform.name, Shipment.shipment_ref == external_id)).scalar_one_or_none()
        shipment = existing or Shipment(order_id=order_id, kind="local", carrier=platform.name,
                                        shipment_ref=external_id, created_at=utcnow())
        shipment.status, shipment.active, shipment.fee_fen = "booked", True, 0
        uow.session.add(shipment)
        orders.transition(uow, order, S.DISPATCHED, platform.name, f"handed to {platform.name}'s own rider")
        uow.commit()
    log.info("delivery %s handed to %s's rider (%s)", order_id, platform.name, external_id)
    return shipment


def _is_channel(ctx: HubContext, carrier: str) -> bool:
    """The shipment is a channel's own rider (`hand_to_platform`), not a courier the hub booked."""
    return any(ch.publish_to == carrier for ch in ctx.config.channels)


def _may_hold(ctx: HubContext, couriers: list[LocalCourier], quoted_by: set[str]) -> list[LocalCourier]:
    """The couriers that may hold a booking the hub never recorded: those it wrote a quote down for (a
    crash between booking and recording), else the store's first (a booking made before any quote row)."""
    if not quoted_by:
        return couriers[:1]
    return [ctx.connectors.local_courier(name) for name in sorted(quoted_by)]


def escalations(uow: UnitOfWork, order_id: str) -> set[str]:
    """The escalation steps recorded on the order's local bookings."""
    return {step for step in uow.session.execute(select(Shipment.escalation).where(
        Shipment.order_id == order_id, Shipment.kind == "local")).scalars() if step}


def switched_from(uow: UnitOfWork, order_id: str) -> set[str]:
    """The couriers escalation took the order away from since an operator last re-dispatched it (a new round,
    every courier again): not asked for it again."""
    rows = uow.session.execute(select(Shipment.id, Shipment.carrier, Shipment.escalation).where(
        Shipment.order_id == order_id, Shipment.kind == "local",
        Shipment.escalation.in_(("switched", OPERATOR_REBOOK)))).all()
    since = max((sid for sid, _, step in rows if step == OPERATOR_REBOOK), default=0)
    return {carrier for sid, carrier, step in rows if step == "switched" and sid > since}


def no_courier(ctx: HubContext, order_id: str, store: LocationConfig, why: str) -> None:
    """No courier can take the order: the store's escalation policy's `last` decides — express from the store,
    or an operator (parked: NeedsOperator)."""
    policy = store.escalation
    if policy is None or policy.last == "operator":
        raise NeedsOperator(f"order {order_id}: {why}; an operator decides (book by hand and replay, or cancel)")
    with ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        if order.fulfillment_type != "delivery" or order.status not in BOOKABLE or \
                active_shipment(uow, order_id) is not None:
            return None
        orders.hand_to_express(uow, order, "hub", f"{why}: sent by express from {store.name}")
        uow.commit()
    log.warning("delivery %s: %s; handed to express from %s", order_id, why, store.id)
    return None


def _choose_quote(ctx: HubContext, couriers: list[LocalCourier], snap: OrderSnapshot,
                  store: LocationConfig) -> DeliveryQuote | None:
    """Quotes asked (in parallel with a deadline, or in order for `preference`), the one to book chosen by
    the store's rule; when nobody quoted, the first courier's error (a TransientError is retried), or None
    when every courier refused and the store's escalation policy says what follows."""
    asked = courier_quotes.ask(couriers, snap, store, lambda name: callback_url(ctx.config, name),
                               ctx.config.hub.courier_quote_deadline_s,
                               one_by_one=store.courier_rule == "preference")
    chosen = courier_choice.choose(asked.quotes, store.courier_rule, [c.name for c in couriers])
    if chosen is not None:
        return chosen
    failures = [asked.failures.get(c.name) for c in couriers]
    if store.escalation is not None and all(isinstance(f, PermanentError) for f in failures):
        return None
    for failure in failures:
        if isinstance(failure, Exception) and not isinstance(failure, TimeoutError):
            raise failure
    raise TransientError(couriers[0].name, f"no courier of store {store.id} quoted within the deadline")


def adopt(ctx: HubContext, order_id: str, held: CourierState) -> Shipment | None:
    """The courier already holds a live booking for the order: record it (the last quote written down
    for it) instead of booking another rider, and apply what the courier says of it."""
    with ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        if order.status not in BOOKABLE or active_shipment(uow, order_id) is not None:
            return None
        shipment = uow.session.execute(
            select(Shipment).where(Shipment.order_id == order_id, Shipment.carrier == held.carrier,
                                   Shipment.status == QUOTED).order_by(Shipment.id.desc())).scalars().first()
        if shipment is None:
            raise NeedsOperator(f"{held.carrier} holds a live delivery for order {order_id} ({held.status}) that the "
                                "hub never quoted: cancel it at the courier, then replay")
        shipment.active, shipment.status = True, "booked"
        if held.shipment_ref:                              # the courier's own number (SF's sf_order_id)
            shipment.shipment_ref = held.shipment_ref
        orders.transition(uow, order, S.DISPATCHED, held.carrier,
                          f"booking {shipment.shipment_ref} found at the courier and adopted")
        apply_tracking(uow, ctx.config, courier_claims.report_of(shipment.shipment_ref, held, utcnow()))
        uow.commit()
        log.warning("delivery %s: adopted booking %s the courier already held", order_id, shipment.shipment_ref)
        return shipment


def ask_to_cancel(ctx: HubContext, order_id: str) -> str | None:
    """The buyer asked to cancel a booked delivery: ask the courier; its answer decides. Returns
    "accepted", "refused", or None when there was nothing to ask."""
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        if order.status != S.CANCEL_REQUESTED:
            return None
        shipment = active_shipment(uow, order_id)
        ref, carrier = (shipment.shipment_ref, shipment.carrier) if shipment else (None, None)
    if shipment is None or ref is None or carrier is None:   # the courier dropped it meanwhile: nothing to stop
        with ctx.uow() as uow:
            courier_outcomes.cancel_accepted(uow, orders.get(uow, order_id, lock=True), "hub", "no rider booked")
            uow.commit()
        return "accepted"
    if _is_channel(ctx, carrier):
        # The platform's own rider, and the platform cancelled the order: its rider is its to call off, and
        # its money its to give back — cancelled here with nothing owed.
        with ctx.uow() as uow:
            order = orders.get(uow, order_id, lock=True)
            must_get(uow.session, Shipment, shipment.id, lock=True).active = False
            if order.status == S.CANCEL_REQUESTED:
                orders.cancel_now(uow, order, carrier, "cancelled by the platform with its rider", owe_refund=False)
            uow.commit()
        return "accepted"
    courier = ctx.connectors.local_courier(carrier)
    try:
        penalty = courier.cancel(order_id, "cancelled by the buyer") or 0
    except PermanentError as exc:          # e.g. code 2050: the rider is delivering
        held = courier.query(order_id)
        with ctx.uow() as uow:
            order = orders.get(uow, order_id, lock=True)
            courier_outcomes.cancel_refused(uow, order, carrier, str(exc))
            if held is not None:           # and on to where the courier says the delivery is
                apply_tracking(uow, ctx.config, courier_claims.report_of(ref, held, utcnow()))
            uow.commit()
        return "refused"
    with ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        row = must_get(uow.session, Shipment, shipment.id, lock=True)
        if order.status == S.CANCEL_REQUESTED:
            row.active, row.status, row.penalty_fen = False, "cancelled", penalty
        courier_outcomes.cancel_accepted(uow, order, carrier, "the courier cancelled the booking")
        uow.commit()
    METRICS.cancel_penalty_fen.labels(carrier).inc(penalty)
    return "accepted"


def cancel_rider(ctx: HubContext, order_id: str, reason: str) -> Shipment | None:
    """Cancel the order's active local booking, if any (cancelling twice is fine at the courier)."""
    with ctx.reader() as uow:
        shipment = active_shipment(uow, order_id)
    if shipment is None or shipment.kind != "local":
        return None
    penalty = 0
    if not _is_channel(ctx, shipment.carrier):           # the platform's rider is the platform's to call off
        penalty = ctx.connectors.local_courier(shipment.carrier).cancel(order_id, reason) or 0
    with ctx.uow() as uow:
        row = must_get(uow.session, Shipment, shipment.id, lock=True)
        row.active, row.status, row.penalty_fen = False, "cancelled", penalty
        uow.commit()
    METRICS.cancel_penalty_fen.labels(shipment.carrier).inc(penalty)
    log.info("delivery %s: booking %s cancelled", order_id, shipment.shipment_ref)
    return row


def delivery_to_courier(ctx: HubContext, event: OrderStatusChanged) -> None:
    if event.to_status == S.CANCELLED:
        cancel_rider(ctx, event.order_id, "order cancelled")
    elif event.to_status == S.CANCEL_REQUESTED:
        ask_to_cancel(ctx, event.order_id)
    else:
        book_rider(ctx, event.order_id)


def book_due(ctx: HubContext, now: datetime | None = None, limit: int = 200) -> list[str]:
    """The scheduler's timer: delivery orders of stores that book `delay_s` after payment, now due and not
    booked yet (no worker sleeps for a delay). Returns the orders booked."""
    now = now or utcnow()
    stores = [loc for loc in ctx.config.stores if loc.dispatch.book == "after_payment"]
    if not stores:
        return []
    with ctx.reader() as uow:
        candidates = [(o.id, o.location_id, o.paid_at) for o in uow.session.execute(
            select(OrderRow).where(OrderRow.fulfillment_type == "delivery", OrderRow.status.in_(BOOKABLE),
                                   OrderRow.location_id.in_([x.id for x in stores]))
            .order_by(OrderRow.paid_at).limit(limit)).scalars()]
    delays = {x.id: timedelta(seconds=x.dispatch.delay_s) for x in stores}
    return [oid for oid, loc, paid in candidates
            if paid is not None and now >= paid + delays[loc or ""] and book_rider(ctx, oid) is not None]


def rebook_courier(ctx: HubContext, event: ShipmentRebookNeeded) -> None:
    if book_rider(ctx, event.order_id) is None:
        log.info("delivery %s: no re-booking needed", event.order_id)

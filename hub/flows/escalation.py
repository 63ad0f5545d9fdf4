"""Escalation when no rider accepts a booking (the store's `locations[].escalation`), run by the scheduler's timer.

Each `after_minutes` without a rider (since the booking, or the last step), one step:
1. the courier is asked first (its word, not the hub's last report: a rider may have accepted and the callback
   been lost) — a delivery that moved on is applied, not escalated;
2. a tip while the tips stay within `max_tip_fen` (recorded on the shipment, in all);
3. then, as the policy says: the next courier of the store's list — the booking cancelled only where the courier's
   own rules allow it now (`cancel_terms`: some refuse once the rider has the goods; a refusal is recorded and
   nothing is switched), its penalty recorded, the order allocated again so `flows/delivery.py` books the next
   courier (the one switched from is not asked again); or express from the store; or an operator. With no courier
   left, the policy's `last` (express or operator).

The operator step (and a cancel the courier refused) is parked as a dead letter of `OPERATOR_STEP` (a replay-only
consumer of `hub/handlers.py`), so it is listed where operators look for work — the console's dead letters, `hub
dlq list` — and counted (`hub_delivery_escalations{step}`, alert HubDeliveryNeedsOperator). Replaying it
(`operator_rebook`) starts a new round: the courier asked first (a rider who accepted meanwhile is applied), else
the waiting booking cancelled where its rules allow and the order allocated again, so every courier of the store is
asked afresh, within the booking cap; a courier that still refuses the cancel keeps the letter parked.

One rider per order at a time: a booking is cancelled (and recorded so) before another is asked for, and the
booking cap `hub.max_courier_bookings` still holds. No transaction is open while a courier is called; every
step re-reads the order under its lock and does nothing when it moved meanwhile. `now` is injectable, so tests
move time instead of sleeping.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from hub import consumers
from hub.bootstrap import HubContext
from hub.config import EscalationPolicy, LocationConfig
from hub.domain.model import TrackingStatus
from hub.domain.order_states import OrderStatus
from hub.events import ShipmentRebookNeeded
from hub.flows.delivery import OPERATOR_REBOOK, active_shipment, switched_from
from hub.metrics import METRICS
from hub.ports import LocalCourier, PermanentError
from hub.services import courier_claims, orders
from hub.services.tracking import apply_tracking
from hub.storage.tables import OrderRow, Shipment, utcnow
from hub.storage.uow import must_get
from hub.storage.upsert import rows_affected

log = logging.getLogger(__name__)
S = OrderStatus
WAITING = str(TrackingStatus.BOOKED)        # booked, no rider yet
PARKED = ("operator", "cancel_refused")     # steps after which the timer leaves the booking to an operator
OPERATOR_STEP = OPERATOR_REBOOK             # the dead letters' target: hub/handlers.py's replay-only consumer
# a recorded step -> its hub_delivery_escalations label
COUNTED = {"tipped": "tip", "tip_refused": "tip_refused", "switched": "switch", "express": "express",
           "operator": "operator", "cancel_refused": "cancel_refused"}


def escalate_due(ctx: HubContext, now: datetime | None = None, limit: int = 200) -> list[str]:
    """The scheduler's timer: bookings of stores with an escalation policy that no rider accepted for
    `after_minutes` since the booking or the last step. Returns the orders a step was taken for."""
    now = now or utcnow()
    policies = {loc.id: loc.escalation for loc in ctx.config.stores if loc.escalation is not None}
    if not policies:
        return []
    with ctx.reader() as uow:
        rows = uow.session.execute(
            select(Shipment.order_id, OrderRow.location_id, Shipment.created_at, Shipment.escalated_at)
            .join(OrderRow, OrderRow.id == Shipment.order_id)
            .where(Shipment.kind == "local", Shipment.active.is_(True), Shipment.status == WAITING,
                   OrderRow.status == S.DISPATCHED, OrderRow.location_id.in_(list(policies)))
            .where((Shipment.escalation.is_(None)) | (Shipment.escalation.not_in(PARKED)))
            .order_by(Shipment.created_at).limit(limit)).all()
    due = [oid for oid, loc, created, stepped in rows
           if now >= (stepped or created) + timedelta(minutes=policies[loc or ""].after_minutes)]
    done = []
    for order_id in due:
        try:
            if escalate(ctx, order_id, now) is not None:
                done.append(order_id)
        except Exception as exc:      # one courier away must not stop the others' escalation; the next tick retries
            log.warning("escalation of delivery %s failed: %s", order_id, exc)
    return done


def escalate(ctx: HubContext, order_id: str, now: datetime) -> str | None:
    """One escalation step for the order's waiting booking, if due; the step taken (None: none was due)."""
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        shipment = active_shipment(uow, order_id)
        store = ctx.config.location(order.location_id or "")
        policy = store.escalation if store is not None else None
        if order.status != S.DISPATCHED or shipment is None or shipment.kind != "local" or policy is None \
                or store is None or shipment.status != WAITING or shipment.escalation in PARKED:
            return None
        if now < (shipment.escalated_at or shipment.created_at) + timedelta(minutes=policy.after_minutes):
            return None
        sid, ref, carrier, tip = shipment.id, shipment.shipment_ref, shipment.carrier, shipment.tip_fen
        last_step = shipment.escalated_at
        tried = switched_from(uow, order_id) | {carrier}
    if not _claim(ctx, sid, last_step, now):
        return None                     # another scheduler took this step
    courier = ctx.connectors.local_courier(carrier)
    held = courier.query(order_id)                  # the courier's word first (no transaction open)
    if held is None or held.status != TrackingStatus.BOOKED:
        if held is not None:
            with ctx.uow() as uow:
                apply_tracking(uow, ctx.config, courier_claims.report_of(ref, held, now))
                uow.commit()
        log.info("delivery %s: %s holds it as %s; not escalated", order_id, carrier, held.status if held else None)
        return None
    if policy.tip_fen and tip < policy.max_tip_fen:
        step = min(policy.tip_fen, policy.max_tip_fen - tip)
        try:
            total = courier.add_tip(order_id, step, tip + step)
        except PermanentError as exc:           # refused (a rider took it meanwhile?): on to the next step
            _record(ctx, sid, now, "tip_refused", str(exc))
            METRICS.delivery_escalations.labels(carrier, "tip_refused").inc()
            log.info("delivery %s: %s refused a tip (%s)", order_id, carrier, exc)
        else:
            _record(ctx, sid, now, "tipped", f"tip {total} fen in all after {policy.after_minutes} min", tip=total)
            log.info("delivery %s: no rider within %d min; %s tipped %d fen (%d in all)", order_id,
                     policy.after_minutes, carrier, step, total)
            METRICS.delivery_escalations.labels(carrier, "tip").inc()
            return "tipped"
    taken = _then(ctx, order_id, sid, courier, store, policy, tried, now)
    METRICS.delivery_escalations.labels(carrier, COUNTED[taken]).inc()
    if taken in PARKED:
        _park_for_operator(ctx, order_id, sid, ref, carrier, taken)
    return taken


def _then(ctx: HubContext, order_id: str, sid: int, courier: LocalCourier, store: LocationConfig,
          policy: EscalationPolicy, tried: set[str], now: datetime) -> str:
    """The step after the tips: the next courier, express or an operator (`last` when no courier is left)."""
    step: str = policy.then
    if step == "next_courier" and not [c for c in ctx.connectors.couriers(store.id) if c.name not in tried]:
        step = policy.last
    if step == "operator":
        _record(ctx, sid, now, "operator", f"no rider accepted; tips spent ({policy.max_tip_fen} fen): an operator "
                                           "decides (book by hand, or cancel the order)")
        log.error("delivery %s: no rider accepted at %s and the store's escalation is spent: needs an operator",
                  order_id, courier.name)
        return "operator"
    terms = courier.cancel_terms(order_id)
    if not terms.allowed:
        _record(ctx, sid, now, "cancel_refused", f"{courier.name} would not cancel: {terms.reason}")
        log.warning("delivery %s: %s refuses a cancel (%s); not switched", order_id, courier.name, terms.reason)
        return "cancel_refused"
    # Marked before the cancel: the courier's own "cancelled" callback may come first and put the order back
    # to allocated, and the booking flow must then neither ask this courier again nor book instead of express.
    step = "express" if step == "express" else "switched"
    _record(ctx, sid, now, step, f"cancel asked of {courier.name}")
    try:
        penalty = courier.cancel(order_id, "no rider accepted: re-dispatched")
    except PermanentError as exc:
        _record(ctx, sid, now, "cancel_refused", f"{courier.name} refused the cancel: {exc}")
        log.warning("delivery %s: %s refused the cancel (%s); not switched", order_id, courier.name, exc)
        return "cancel_refused"
    penalty = penalty or terms.penalty_fen
    METRICS.cancel_penalty_fen.labels(courier.name).inc(penalty)
    with ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        row = must_get(uow.session, Shipment, sid, lock=True)
        row.active, row.status, row.penalty_fen = False, "cancelled", penalty
        why = (f"no rider accepted at {courier.name} within {policy.after_minutes} min; booking {row.shipment_ref} "
               f"cancelled (penalty {penalty} fen)")
        row.escalation_detail = why[:300]
        current = active_shipment(uow, order_id)
        if current is None and step == "express" and order.status in (S.DISPATCHED, S.ALLOCATED):
            orders.hand_to_express(uow, order, "hub", f"{why}: sent by express from {store.name}")
        elif current is None and order.status == S.DISPATCHED:   # flows/delivery.py books the next courier
            orders.transition(uow, order, S.ALLOCATED, "hub", f"{why}: re-dispatched to the next courier")
        uow.commit()
    log.warning("delivery %s: %s (%s)", order_id, why, step)
    return step


def _park_for_operator(ctx: HubContext, order_id: str, sid: int, ref: str | None, carrier: str, step: str) -> None:
    """The operator step as a dead letter: a `shipment.rebook_needed` for the waiting booking, whose replay is
    `operator_rebook`. Its message id names the booking, so one booking parks once (a letter still parked is
    updated, not doubled)."""
    event = ShipmentRebookNeeded(order_id, sid, carrier, ref, f"escalation: {step}")
    envelope = {"id": f"escalation-{sid}", "type": event.TYPE, "occurred_at": utcnow().isoformat(),
                "data": event.data()}

    def park() -> int:
        with ctx.reader() as uow:
            detail = must_get(uow.session, Shipment, sid).escalation_detail or step
        return consumers.park(ctx, OPERATOR_STEP, envelope, f"NeedsOperator: order {order_id}: {detail}. Replay "
                              f"cancels the waiting booking at {carrier} (where its rules allow) and books again "
                              "from the store's couriers; or cancel the order", 1)

    # The step is recorded already and the timer will not take it again: an outage of our database is waited out
    # here, so the letter is never lost.
    consumers.wait_out_outage(f"parking the operator step of {order_id}", park)


def operator_rebook(ctx: HubContext, event: ShipmentRebookNeeded) -> None:
    """An operator replayed the operator step's dead letter: a new round for the booking no rider accepted.
    Nothing is done when the order moved on meanwhile (booked by hand, cancelled, a rider found); a rider who
    accepted unheard is applied; else the booking is cancelled where the courier's rules allow (a refusal raises:
    the letter stays parked) and the order allocated again, so flows/delivery.py asks the store's couriers afresh
    — those escalation switched away from included — within `hub.max_courier_bookings`."""
    now = utcnow()
    order_id = event.order_id
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        row = uow.session.get(Shipment, event.shipment_id) if event.shipment_id is not None else None
        if row is None or not row.active or row.escalation not in PARKED or order.status != S.DISPATCHED:
            log.info("delivery %s: moved on since it was left to an operator; nothing to re-book", order_id)
            return
        sid, ref, carrier = row.id, row.shipment_ref, row.carrier
    courier = ctx.connectors.local_courier(carrier)
    held = courier.query(order_id)
    if held is None or held.status != TrackingStatus.BOOKED:
        if held is not None:
            with ctx.uow() as uow:
                apply_tracking(uow, ctx.config, courier_claims.report_of(ref, held, now))
                uow.commit()
        log.info("delivery %s: %s holds it as %s; not re-booked", order_id, carrier, held.status if held else None)
        return
    terms = courier.cancel_terms(order_id)
    if not terms.allowed:
        raise PermanentError(carrier, f"{carrier} still would not cancel booking {ref}: {terms.reason}")
    _record(ctx, sid, now, OPERATOR_REBOOK, f"an operator replayed the escalation: cancel asked of {carrier}")
    penalty = courier.cancel(order_id, "re-dispatched by an operator") or terms.penalty_fen
    METRICS.cancel_penalty_fen.labels(carrier).inc(penalty)
    METRICS.delivery_escalations.labels(carrier, OPERATOR_REBOOK).inc()
    with ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        row = must_get(uow.session, Shipment, sid, lock=True)
        row.active, row.status, row.penalty_fen = False, "cancelled", penalty
        if active_shipment(uow, order_id) is None and order.status == S.DISPATCHED:
            orders.transition(uow, order, S.ALLOCATED, "operator", f"an operator re-dispatched it: booking {ref} "
                              f"at {carrier} cancelled (penalty {penalty} fen); every courier of the store asked again")
        uow.commit()
    log.warning("delivery %s: an operator re-dispatched it; booking %s at %s cancelled", order_id, ref, carrier)


def _claim(ctx: HubContext, sid: int, last_step: datetime | None, now: datetime) -> bool:
    """Take this step for the booking (one conditional UPDATE): two schedulers never tip or switch twice. A step
    that then fails is tried again one period later."""
    same = Shipment.escalated_at.is_(None) if last_step is None else Shipment.escalated_at == last_step
    with ctx.uow() as uow:
        claimed = rows_affected(uow.session.execute(update(Shipment).where(Shipment.id == sid, same)
                                                    .values(escalated_at=now))) == 1
        uow.commit()
    return claimed


def _record(ctx: HubContext, sid: int, now: datetime, step: str, detail: str, tip: int | None = None) -> None:
    with ctx.uow() as uow:
        row = must_get(uow.session, Shipment, sid, lock=True)
        row.escalation, row.escalation_detail, row.escalated_at = step, detail[:300], now
        if tip is not None:
            row.tip_fen = tip
        uow.commit()

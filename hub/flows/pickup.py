"""Store pickup at the POS: the order appears at the store's till when allocated, and the
till follows the hub's state (ready -> PREPARED, collected -> COMPLETED, cancelled -> CANCELED).

Decisions read the order as it is now, not as the event says it was, so late or concurrent
events never move the POS backwards; no transaction is open while the POS is called.
"""
from __future__ import annotations

import logging

from hub.bootstrap import HubContext
from hub.domain.model import OrderSnapshot
from hub.domain.order_states import OrderStatus
from hub.events import OrderStatusChanged
from hub.ports import PointOfSale
from hub.services import orders

log = logging.getLogger(__name__)
S = OrderStatus

# the POS state each hub state asks for, and the hub states in which that still holds
_POS_STATE = {S.READY_FOR_PICKUP: "ready", S.COLLECTED: "collected", S.CANCELLED: "cancelled"}
STILL = {S.ALLOCATED: {S.ALLOCATED, S.READY_FOR_PICKUP}, S.READY_FOR_PICKUP: {S.READY_FOR_PICKUP},
         S.COLLECTED: {S.COLLECTED, S.COMPLETED}, S.CANCELLED: {S.CANCELLED, S.REFUNDED}}


MAX_ROUNDS = 3       # re-syncs when the order moves on while the POS is being called


def _target_for(status: str) -> S | None:
    """The event target whose POS state the order's current status asks for."""
    # latest first: ready_for_pickup still holds for an allocated push, but asks for PREPARED
    return next((t for t in (S.CANCELLED, S.COLLECTED, S.READY_FOR_PICKUP, S.ALLOCATED) if status in STILL[t]), None)


def _read(ctx: HubContext, order_id: str) -> tuple[str, OrderSnapshot]:
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        return order.status, orders.snapshot(order)


def pickup_to_pos(ctx: HubContext, event: OrderStatusChanged) -> None:
    target = S(event.to_status)
    status, snap = _read(ctx, event.order_id)
    if status not in STILL[target]:
        log.info("pickup %s: %s is past (now %s); POS left as it is", event.order_id, target, status)
        return
    pos = ctx.connectors.pos()
    for _ in range(MAX_ROUNDS):
        _set_at_pos(pos, snap, target)
        status, snap = _read(ctx, event.order_id)
        if status in STILL[target] or (now := _target_for(status)) is None:
            return
        # The order moved on while the POS was called; that move's own event may have reached the
        # POS before this call did, so the POS is set again to what the order is now.
        target = now


def _set_at_pos(pos: PointOfSale, snap: OrderSnapshot, target: S) -> None:
    order_id = snap.order_id
    if target == S.ALLOCATED:
        # The POS dedupes on the hub's order id: a second push returns the same POS order.
        pos_id = pos.push_pickup_order(snap)
        log.info("pickup %s pushed to the POS as %s", order_id, pos_id)
        return
    if target == S.CANCELLED and pos.binder.to_external(pos.name, "order", order_id) is None:
        return                          # never reached the till: nothing to cancel there
    # Pushes first if the allocated event has not been handled yet; repeating a state is a no-op.
    pos.update_pickup_state(snap, _POS_STATE[target])
    log.info("pickup %s: POS set to %s", order_id, _POS_STATE[target])

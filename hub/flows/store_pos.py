"""Every order a store fulfils at its POS — a pickup, a delivery its rider takes, a parcel it packs for the
carrier: the order appears at the store's till when allocated, with its lines, shelf hints, promised time and the
buyer's note (`services/picking.py` `for_store`), and the till follows the hub's state: picked -> PREPARED, handed
over (collected, picked up by the rider, shipped) -> COMPLETED, cancelled -> CANCELED.

Each event only says "look again": the POS is set to what the order asks for now, never to what the event says it
was, so late or concurrent events never move the POS backwards; no transaction is open while the POS is called.
A warehouse's parcel has no store and no till: it is left alone.
"""
from __future__ import annotations

import logging

from hub.bootstrap import HubContext
from hub.domain.model import OrderSnapshot
from hub.domain.order_states import COMMITS_STOCK, OrderStatus
from hub.events import OrderStatusChanged
from hub.ports import PointOfSale
from hub.services import orders, picking
from hub.storage.tables import OrderRow

log = logging.getLogger(__name__)
S = OrderStatus

# The changes after which the till may have something new to show (the consumer's filter, hub/handlers.py).
TOLD = frozenset({S.ALLOCATED, S.PICKED, S.READY_FOR_PICKUP, S.COLLECTED, S.PICKED_UP, S.SHIPPED, S.CANCELLED})
# Open at the store and not picked yet: the till shows it to pick.
_TO_PICK = {S.ALLOCATED, S.PICKING, S.DISPATCHED, S.RIDER_ASSIGNED, S.CANCEL_REQUESTED}
MAX_ROUNDS = 3       # re-syncs when the order moves on while the POS is being called


def pos_state(order: OrderRow) -> str | None:
    """The till's state (canonical: proposed, ready, collected, cancelled) the order asks for now; None for an
    order the till has nothing to show of (not allocated yet)."""
    if {t.to_status for t in order.transitions} & COMMITS_STOCK:
        return "collected"              # handed over (and whatever came after: returned, refunded)
    if order.status in (S.CANCELLED, S.REFUNDED):
        return "cancelled"
    if order.picked_at is not None or order.status in (S.PICKED, S.READY_FOR_PICKUP):
        return "ready"
    return "proposed" if order.status in _TO_PICK else None


def _read(ctx: HubContext, order_id: str) -> tuple[str | None, OrderSnapshot | None]:
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        if not picking.at_store(ctx.config, order):
            return None, None
        return pos_state(order), picking.for_store(uow, ctx.config, order)


def store_order_to_pos(ctx: HubContext, event: OrderStatusChanged) -> None:
    state, snap = _read(ctx, event.order_id)
    if state is None or snap is None:
        log.info("order %s: nothing for a store's POS (now %s)", event.order_id, event.to_status)
        return
    pos = ctx.connectors.pos()
    for _ in range(MAX_ROUNDS):
        _set_at_pos(pos, snap, state)
        now, snap = _read(ctx, event.order_id)
        if now == state or now is None or snap is None:
            return
        # The order moved on while the POS was called; that move's own event may have reached the
        # POS before this call did, so the POS is set again to what the order is now.
        state = now


def _set_at_pos(pos: PointOfSale, snap: OrderSnapshot, state: str) -> None:
    order_id = snap.order_id
    if state == "proposed":
        # The POS dedupes on the hub's order id: a second push returns the same POS order.
        pos_id = pos.push_order(snap)
        log.info("%s order %s pushed to the POS as %s", snap.fulfillment.type, order_id, pos_id)
        return
    if state == "cancelled" and pos.binder.to_external(pos.name, "order", order_id) is None:
        return                          # never reached the till: nothing to cancel there
    # Pushes first if the allocated event has not been handled yet; repeating a state is a no-op.
    pos.update_order_state(snap, state)
    log.info("%s order %s: POS set to %s", snap.fulfillment.type, order_id, state)

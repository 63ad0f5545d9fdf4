"""Store pickup at the POS: the order appears at the store's till when allocated, and the
till follows the hub's state (ready -> PREPARED, collected -> COMPLETED, cancelled -> CANCELED).

Decisions read the order as it is now (locked), not as the event says it was, so late or
concurrent events never move the POS backwards.
"""
from __future__ import annotations

import logging
from typing import Any

from hub.bootstrap import HubContext
from hub.domain.order_states import OrderStatus
from hub.flows import reacts
from hub.services import orders
from hub.storage.bindings import bind_within
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus
POS = "pos"

# the POS state each hub state asks for, and the hub states in which that still holds
_POS_STATE = {S.READY_FOR_PICKUP: "ready", S.COLLECTED: "collected", S.CANCELLED: "cancelled"}
_STILL = {S.ALLOCATED: {S.ALLOCATED, S.READY_FOR_PICKUP}, S.READY_FOR_PICKUP: {S.READY_FOR_PICKUP},
          S.COLLECTED: {S.COLLECTED, S.COMPLETED}, S.CANCELLED: {S.CANCELLED, S.REFUNDED}}


@reacts("fulfilment.pickup_pos", fulfillment=["pickup"], to=list(_STILL))
def sync_pickup_to_pos(ctx: HubContext, uow: UnitOfWork, data: dict[str, Any]) -> None:
    order = orders.get(uow, data["order_id"], lock=True)
    target = S(data["to"])
    if order.status not in _STILL[target]:
        log.info("pickup %s: %s is past (now %s); POS left as it is", order.id, target, order.status)
        return
    pos = ctx.connectors[POS]
    snap = orders.snapshot(order)
    with bind_within(uow.session):          # the POS's order id binds in this transaction
        if target == S.ALLOCATED:
            # The POS dedupes on the hub's order id: a second push returns the same POS order.
            pos_id = pos.push_pickup_order(snap)
            log.info("pickup %s pushed to the POS at %s as %s", order.id, order.location_id, pos_id)
            return
        if target == S.CANCELLED and pos.binder.to_external(pos.name, "order", order.id) is None:
            return                          # never reached the till: nothing to cancel there
        # Pushes first if the allocated event has not been handled yet; repeating a state is a no-op.
        pos.update_pickup_state(snap, _POS_STATE[target])
        log.info("pickup %s: POS set to %s", order.id, _POS_STATE[target])

"""The order state machine: one table of legal transitions per fulfilment type.

pickup:   pending_payment -> paid -> allocated -> picking -> picked -> ready_for_pickup -> collected
          -> completed
delivery: pending_payment -> paid -> allocated -> picking -> picked -> dispatched -> rider_assigned
          -> picked_up -> delivered -> completed   (a courier that cancels sends dispatched/rider_assigned
          back to allocated for re-booking)
express:  pending_payment -> paid -> allocated -> [picking -> picked ->] shipped -> in_transit -> delivered
          -> completed

Who moves each: the buyer's channel and the payment platform to paid, the hub to allocated; the store's
staff (store key: services/picking.py) to picking and picked — a pickup order goes on to ready_for_pickup in
the same step; the store's dispatch policy decides when the rider is booked (dispatched): at pick complete
(the default, from picked), at payment or a delay after it (from allocated or picking: the rider may arrive
before the pick, and the store still records its pick, without a state change, on the booked order); the
courier's reports move a delivery on from dispatched, the express carrier's a parcel from shipped.
A warehouse's express order is shipped from allocated (no store picks it); a store that ships parcels picks its
express order first, and the carrier's waybill ships it from picked.

Cancel is immediate until a rider is booked. Once a rider is booked he may already hold the goods
(the courier's reports lag), so the buyer's cancel becomes `cancel_requested`: the stock stays held
until the courier answers — accepted -> cancelled (stock released), refused -> back to where the
order was (and on, as the courier reports).
A failed delivery goes picked_up/shipped/in_transit -> returning -> returned: the goods back in the
store's (warehouse's) stock. A store takes goods back after collection: collected/completed -> returned.

Money and goods are apart: a refund never moves stock, only a return does. Refunded follows a paid
cancellation or a return, or is money only (仅退款) on a collected/delivered/completed order, whose goods
stay with the buyer. A pickup order refunded so may still be handed back at the store, once:
refunded -> returned (the goods on-hand again) -> refunded (the money was back already, none owed).
An order enters `returned` at most once, and only when its goods had left and not come back
(the order service checks its history), so the goods go back on the shelf once.
"""
from __future__ import annotations

from enum import StrEnum

from hub.domain.model import FulfillmentType


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    ALLOCATED = "allocated"
    PICKING = "picking"                     # the store's staff started picking
    PICKED = "picked"                       # picked (short lines refunded, stock corrected): handed on
    READY_FOR_PICKUP = "ready_for_pickup"
    COLLECTED = "collected"
    DISPATCHED = "dispatched"
    RIDER_ASSIGNED = "rider_assigned"
    PICKED_UP = "picked_up"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCEL_REQUESTED = "cancel_requested"   # the buyer asked; the courier has not answered yet
    RETURNING = "returning"                 # the delivery failed; the goods are on their way back
    RETURNED = "returned"                   # the goods are back in stock; the money is owed
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


S = OrderStatus

_COMMON: dict[S, set[S]] = {
    S.PENDING_PAYMENT: {S.PAID, S.CANCELLED},
    S.PAID: {S.ALLOCATED, S.CANCELLED},
    S.CANCELLED: {S.REFUNDED},      # only when it had been paid (checked by the order service)
    S.COMPLETED: {S.REFUNDED},
    S.RETURNED: {S.REFUNDED},       # the platform's refund notification closes it
}

TRANSITIONS: dict[FulfillmentType, dict[S, set[S]]] = {
    FulfillmentType.PICKUP: {
        **_COMMON,
        S.ALLOCATED: {S.PICKING, S.CANCELLED},
        S.PICKING: {S.PICKED, S.CANCELLED},
        S.PICKED: {S.READY_FOR_PICKUP, S.CANCELLED},
        S.READY_FOR_PICKUP: {S.COLLECTED, S.CANCELLED},
        S.COLLECTED: {S.COMPLETED, S.REFUNDED, S.RETURNED},
        S.COMPLETED: {S.REFUNDED, S.RETURNED},      # handed back at the store after collection
        S.REFUNDED: {S.RETURNED},                   # money only first, the goods handed back later (once)
    },
    FulfillmentType.DELIVERY: {
        **_COMMON,
        # booked at payment (or a delay after it) goes from allocated or picking; at pick complete from picked
        S.ALLOCATED: {S.PICKING, S.DISPATCHED, S.CANCELLED},
        S.PICKING: {S.PICKED, S.DISPATCHED, S.CANCELLED},
        S.PICKED: {S.DISPATCHED, S.CANCELLED},
        S.DISPATCHED: {S.RIDER_ASSIGNED, S.PICKED_UP, S.ALLOCATED, S.CANCEL_REQUESTED},
        S.RIDER_ASSIGNED: {S.PICKED_UP, S.ALLOCATED, S.CANCEL_REQUESTED},
        # accepted -> cancelled; refused -> where it was, or on to where the courier says it is
        S.CANCEL_REQUESTED: {S.CANCELLED, S.DISPATCHED, S.RIDER_ASSIGNED, S.PICKED_UP},
        S.PICKED_UP: {S.DELIVERED, S.RETURNING, S.RETURNED},
        S.RETURNING: {S.RETURNED},
        S.DELIVERED: {S.COMPLETED, S.REFUNDED},
    },
    FulfillmentType.EXPRESS: {
        **_COMMON,
        S.ALLOCATED: {S.PICKING, S.SHIPPED, S.CANCELLED},     # a warehouse ships; a store picks first
        S.PICKING: {S.PICKED, S.CANCELLED},
        S.PICKED: {S.SHIPPED, S.CANCELLED},
        S.SHIPPED: {S.IN_TRANSIT, S.DELIVERED, S.RETURNING, S.RETURNED},
        S.IN_TRANSIT: {S.DELIVERED, S.RETURNING, S.RETURNED},
        S.RETURNING: {S.RETURNED},
        S.DELIVERED: {S.COMPLETED, S.REFUNDED},
    },
}

# Entering these states moves stock.
COMMITS_STOCK = {S.COLLECTED, S.PICKED_UP, S.SHIPPED}       # goods leave: reservation -> stock-out
RELEASES_STOCK = {S.CANCELLED}                             # reservation back to available
RETURNS_STOCK = {S.RETURNED}                               # the goods came back: on-hand again
# Entering `refunded` moves no stock, whatever the order's state: money back is not goods back.
TERMINAL = {S.REFUNDED}         # for the money; a refunded pickup may still be handed back (-> returned)
# The store's pick is still to do (or under way): the order is on its list to pick.
TO_PICK = (S.ALLOCATED, S.PICKING)
FINAL_FOR_BUYER = {S.COMPLETED, S.CANCELLED, S.REFUNDED, S.RETURNED}


def allowed(fulfillment: FulfillmentType | str, current: str, target: str) -> bool:
    table = TRANSITIONS[FulfillmentType(fulfillment)]
    try:
        return S(target) in table.get(S(current), set())
    except ValueError:
        return False

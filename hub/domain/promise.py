"""The promised time: when the store is to have an order ready to hand over (to the buyer at the counter, to the
rider, to the parcel carrier), counted from payment. One rule, read by the store's order list, its POS and the
buyer's order view, so the three never disagree."""
from __future__ import annotations

from datetime import datetime, timedelta

from hub.domain.model import FulfillmentType

# The mini-program's "pickup today" and "delivery in ~1h"; a parcel a store packs goes with the carrier's round.
PROMISE = {FulfillmentType.PICKUP: timedelta(minutes=30), FulfillmentType.DELIVERY: timedelta(minutes=60),
           FulfillmentType.EXPRESS: timedelta(hours=2)}


def promised_at(fulfillment: FulfillmentType | str, paid_at: datetime | None, at_store: bool) -> datetime | None:
    """Paid plus the fulfilment's promise; None before payment, and for a warehouse's parcel (no store hands it
    over: the carrier's own estimate is the buyer's)."""
    kind = FulfillmentType(fulfillment)
    if paid_at is None or not (at_store or kind != FulfillmentType.EXPRESS):
        return None
    return paid_at + PROMISE[kind]

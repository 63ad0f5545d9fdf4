"""The promised time: what the buyer was promised, counted from payment — ready at the counter (pickup), at the
door (delivery), handed to the carrier (a parcel a store packs). One rule, read by the store's order list, its POS
and the buyer's order view, so the three never disagree."""
from __future__ import annotations

from datetime import datetime, timedelta

from hub.domain.model import FulfillmentType

# The mini-program's "pickup today" and "delivery in ~1h"; a store's parcel goes with the carrier's next round.
PROMISE = {FulfillmentType.PICKUP: timedelta(minutes=30), FulfillmentType.DELIVERY: timedelta(minutes=60),
           FulfillmentType.EXPRESS: timedelta(hours=2)}


def promised_at(fulfillment: FulfillmentType | str, paid_at: datetime | None, at_store: bool) -> datetime | None:
    """Paid plus the fulfilment's promise; None before payment, and for a warehouse's parcel (no store hands it
    over: the carrier's own estimate is the buyer's)."""
    kind = FulfillmentType(fulfillment)
    if paid_at is None or (kind == FulfillmentType.EXPRESS and not at_store):
        return None
    return paid_at + PROMISE[kind]

"""The promised time: what the buyer was promised, counted from payment — ready at the counter (pickup), at the
door (delivery), handed to the carrier (a parcel a store packs). One rule, read by the store's order list, its POS
and the buyer's order view, so the three never disagree."""
from __future__ import annotations

from datetime import datetime, timedelta

from hub.domain import hours
from hub.domain.model import FulfillmentType

# The mini-program's "pickup today" and "delivery in ~1h"; a store's parcel goes with the carrier's next round.
PROMISE = {FulfillmentType.PICKUP: timedelta(minutes=30), FulfillmentType.DELIVERY: timedelta(minutes=60),
           FulfillmentType.EXPRESS: timedelta(hours=2)}


def promised_at(fulfillment: FulfillmentType | str, paid_at: datetime | None, at_store: bool,
                calendar: hours.Calendar | None = None) -> datetime | None:
    """The fulfilment's promise counted in the store's open time from payment (`calendar`; None: always open),
    so an order paid while the store is closed, or just before it closes, is promised after the next opening.
    None before payment, for a warehouse's parcel (no store hands it over: the carrier's own estimate is the
    buyer's), and when the store does not open within the calendar's horizon."""
    kind = FulfillmentType(fulfillment)
    if paid_at is None or (kind == FulfillmentType.EXPRESS and not at_store):
        return None
    return hours.after_open_time(calendar, paid_at, PROMISE[kind])

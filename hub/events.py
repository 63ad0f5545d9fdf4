"""The catalogue of events: every event the core emits, what it carries, and who consumes it.

Services emit these names (`uow.emit(events.STOCK_CHANGED, {...})`) into the outbox in the same
transaction as the change; the relay publishes them; each consumer named here runs once per
event in the service named by its prefix (`fulfilment.*` in `workers/fulfilment.py`, ...).
The workers subscribe from this table (`workers.subscribe.consume`), and a test checks that
every consumer here is registered and subscribed, and nothing else is.
"""
from __future__ import annotations

from dataclasses import dataclass

STOCK_CHANGED = "stock.changed"
ORDER_STATUS_CHANGED = "order.status_changed"
SHIPMENT_REBOOK_NEEDED = "shipment.rebook_needed"
ORDER_REFUND_DUE = "order.refund_due"


@dataclass(frozen=True)
class EventType:
    name: str
    payload: tuple[str, ...]        # the keys of the event's `data`
    meaning: str
    consumers: tuple[str, ...]      # consumer names (`service.consumer`), each run once per event
    optional: tuple[str, ...] = ()  # keys an emitter may add; consumers do without them


CATALOGUE: tuple[EventType, ...] = (
    EventType(STOCK_CHANGED, ("sku", "location_id", "cause"),
              "what may be sold of a SKU at a location changed (sale, count, reservation, release, ...)",
              ("channel_sync.publish_stock",)),
    EventType(ORDER_STATUS_CHANGED, ("order_id", "from", "to", "fulfillment", "location_id", "source"),
              "an order moved along its state machine; consumers pick the fulfilment types and targets they want",
              ("fulfilment.pickup_pos", "fulfilment.local_delivery", "fulfilment.express", "fulfilment.shipping_info",
               "erp_sync.sales_order", "erp_sync.return_order", "erp_sync.crm_points",
               "scheduler.flash_sale_give_back")),
    EventType(SHIPMENT_REBOOK_NEEDED, ("order_id", "shipment_id", "carrier", "shipment_ref", "reason"),
              "a courier cancelled or let a booking expire; the order is back to allocated",
              ("fulfilment.rebook_courier",)),
    EventType(ORDER_REFUND_DUE, ("order_id", "payment_ref"),
              "money is owed back on a payment (paid order cancelled, a cancel the courier accepted, paid after "
              "cancellation, paid twice, not collected, refund asked for, a delivery returned, goods handed back "
              "at a store): ask the payment platform for it",
              ("fulfilment.refund_due",),
              # amount_fen: default what was paid minus what is refunded or on its way; refund_no: the refund
              # row the emitter recorded (services/money_owed.py), else the consumer records one per event
              optional=("amount_fen", "reason", "refund_no")),
)

EVENTS: dict[str, EventType] = {e.name: e for e in CATALOGUE}


def event_of(consumer: str) -> str:
    """The event type consumer `consumer` handles."""
    for event in CATALOGUE:
        if consumer in event.consumers:
            return event.name
    raise KeyError(f"consumer {consumer!r} is in no event's consumers (hub/events.py)")

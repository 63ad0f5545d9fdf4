"""Fulfilment: an order's way out of the hub — the store's POS, the couriers, the payment
platform's shipping info. Each handler is its own queue and consumer, so one system being
down parks only its own work."""
from __future__ import annotations

from hub.flows import delivery, express, pickup, refunds, shipping_info  # noqa: F401  (register consumers)

from .dependencies import HubCore
from .subscribe import consume


class FulfilmentService:
    name = "fulfilment"
    hub = HubCore()

    # method name (its queue) = the flow consumer it runs; the event comes from hub/events.py
    pickup_at_pos = consume("fulfilment.pickup_pos")
    local_delivery = consume("fulfilment.local_delivery")
    express_waybill = consume("fulfilment.express")
    shipping_info = consume("fulfilment.shipping_info")
    rebook_courier = consume("fulfilment.rebook_courier")
    refund_due = consume("fulfilment.refund_due")

"""Fulfilment: an order's way out of the hub — the store's POS, the couriers, the payment
platform's shipping info, refunds. Each consumer (`hub/handlers.py`, service "fulfilment") is its
own queue, so one system being down parks only its own work."""
from __future__ import annotations

from .dependencies import HubCore
from .subscribe import subscribed


@subscribed
class FulfilmentService:
    name = "fulfilment"
    hub = HubCore()

"""Fulfilment: an order's way out of the hub — the store's POS, the couriers, the payment
platform's shipping info. Each handler is its own queue and consumer, so one system being
down parks only its own work."""
from __future__ import annotations

from typing import Any

from hub import flows
from hub.flows import delivery, express, pickup, refunds, shipping_info  # noqa: F401  (register consumers)

from . import on_event
from .dependencies import HubCore


class FulfilmentService:
    name = "fulfilment"
    hub = HubCore()

    @on_event("order.status_changed")
    def pickup_at_pos(self, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, "fulfilment.pickup_pos", envelope)

    @on_event("order.status_changed")
    def local_delivery(self, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, "fulfilment.local_delivery", envelope)

    @on_event("order.status_changed")
    def express_waybill(self, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, "fulfilment.express", envelope)

    @on_event("order.status_changed")
    def shipping_info(self, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, "fulfilment.shipping_info", envelope)

    @on_event("shipment.rebook_needed")
    def rebook_courier(self, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, "fulfilment.rebook_courier", envelope)

    @on_event("order.refund_due")
    def refund_due(self, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, "fulfilment.refund_due", envelope)

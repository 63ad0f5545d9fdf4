"""The mini-program platform's shipping-info upload: self-pickup when the order is ready,
same-city when a rider is booked, express with the waybill when shipped.

A consumer of its own, so the payment platform being down delays only this upload, never the
courier booking or the POS.
"""
from __future__ import annotations

import logging
from typing import Any

from hub.bootstrap import HubContext
from hub.domain.order_states import OrderStatus
from hub.flows import reacts
from hub.flows.delivery import active_shipment
from hub.services import orders

log = logging.getLogger(__name__)
S = OrderStatus
LOGISTICS = {S.READY_FOR_PICKUP: "pickup", S.DISPATCHED: "same_city", S.SHIPPED: "express"}


@reacts("fulfilment.shipping_info", to=list(LOGISTICS), calls_out=True)
def upload_shipping_info(ctx: HubContext, data: dict[str, Any]) -> None:
    with ctx.reader() as uow:
        order = orders.get(uow, data["order_id"])
        if not order.payment_ref or not ctx.connectors.has("payment"):
            log.info("order %s: no platform payment to attach shipping info to", order.id)
            return
        logistics = LOGISTICS[S(data["to"])]
        tracking_no = carrier = None
        if logistics == "express":
            shipment = active_shipment(uow, order.id)
            if shipment is None:
                raise LookupError(f"order {order.id} shipped without an active waybill")
            tracking_no, carrier = shipment.shipment_ref, shipment.carrier
        snap, payment_ref = orders.snapshot(order), order.payment_ref
    company = express_company(ctx, carrier) if carrier else None
    ctx.connectors.payment().upload_shipping_info(snap, payment_ref, logistics, tracking_no, company)
    log.info("order %s: shipping info uploaded (%s)", snap.order_id, logistics)


def express_company(ctx: HubContext, carrier: str) -> str:
    """The courier company's code, as the carrier's mapping names it for tracking."""
    return ctx.connectors[carrier].company_code()

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
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus
PLATFORM = "wechat_pay"
LOGISTICS = {S.READY_FOR_PICKUP: "pickup", S.DISPATCHED: "same_city", S.SHIPPED: "express"}


@reacts("fulfilment.shipping_info", to=list(LOGISTICS))
def upload_shipping_info(ctx: HubContext, uow: UnitOfWork, data: dict[str, Any]) -> None:
    order = orders.get(uow, data["order_id"])
    if not order.payment_ref or PLATFORM not in ctx.connectors:
        log.info("order %s: no %s payment to attach shipping info to", order.id, PLATFORM)
        return
    logistics = LOGISTICS[S(data["to"])]
    tracking_no = company = None
    if logistics == "express":
        shipment = active_shipment(uow, order.id)
        if shipment is None:
            raise LookupError(f"order {order.id} shipped without an active waybill")
        tracking_no, company = shipment.shipment_ref, express_company(ctx, shipment.carrier)
    ctx.connectors[PLATFORM].upload_shipping_info(orders.snapshot(order), order.payment_ref, logistics,
                                                  tracking_no, company)
    log.info("order %s: shipping info uploaded (%s)", order.id, logistics)


def express_company(ctx: HubContext, carrier: str) -> str:
    """The courier company's code, as the carrier's mapping names it for tracking."""
    return ctx.connectors[carrier].mapping.operation("k100_company")

"""Express from a warehouse: waybill, tracking subscription, shipped (which commits the stock).

The courier dedupes waybills on the hub's order id, so a retry after a crash gets the same
waybill back, and subscribing twice is harmless.
"""
from __future__ import annotations

import logging
from typing import Any

from hub.bootstrap import HubContext
from hub.domain.order_states import OrderStatus
from hub.flows import callback_url, reacts
from hub.flows.delivery import active_shipment
from hub.services import orders
from hub.storage.tables import OrderRow, Shipment, utcnow
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus
COURIER = "express"


def ship_express(ctx: HubContext, uow: UnitOfWork, order: OrderRow) -> Shipment | None:
    """Book the waybill and mark the order shipped. None when it is not (or no longer) due."""
    if order.status != S.ALLOCATED or active_shipment(uow, order.id) is not None:
        return None
    # Routing names the warehouse; a split shipment (if allowed) would need one waybill per origin.
    origin_ids = {order.location_id} if order.location_id else {line.location_id for line in order.lines}
    origin_ids.discard(None)
    origin = ctx.config.location(next(iter(origin_ids))) if len(origin_ids) == 1 else None
    if origin is None:
        raise LookupError(f"order {order.id}: one origin warehouse needed, have {sorted(origin_ids)}")
    courier = ctx.connectors[COURIER]
    booking = courier.create_waybill(orders.snapshot(order), origin)
    courier.subscribe_tracking(booking.shipment_ref, callback_url(ctx.config, courier.name))
    shipment = Shipment(order_id=order.id, kind="express", carrier=booking.carrier,
                        shipment_ref=booking.shipment_ref, status="booked", fee_fen=booking.fee_fen, active=True,
                        created_at=utcnow())
    uow.session.add(shipment)
    orders.transition(uow, order, S.SHIPPED, booking.carrier, f"waybill {booking.shipment_ref} from {origin.name}")
    log.info("express %s shipped from %s as waybill %s", order.id, origin.id, booking.shipment_ref)
    return shipment


@reacts("fulfilment.express", fulfillment=["express"], to=[S.ALLOCATED])
def on_express_allocated(ctx: HubContext, uow: UnitOfWork, data: dict[str, Any]) -> None:
    ship_express(ctx, uow, orders.get(uow, data["order_id"], lock=True))

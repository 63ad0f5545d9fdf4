"""A channel that shows its orders' delivery (the WeChat shop: `order/delivery/send`) is told how each of its
orders left: the courier's waybill when an express order ships, the rider's booking when a same-city rider is
booked (dispatched). Only channels whose connector offers `send_delivery` are told, and only orders they took
(an external id).

Once per real change: what was told is remembered (order, carrier, waybill) as a processed "message" of this
pseudo-consumer, so a redelivered event or a rider re-booked under the same booking tells nothing again; a new
rider or waybill is told. Calls out with no transaction open; the channel answers a repeat of the same delivery
ok, so a crash between the call and the record only repeats it.
"""
from __future__ import annotations

import hashlib
import logging

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.domain.order_states import OrderStatus as S
from hub.events import OrderStatusChanged
from hub.flows.delivery import active_shipment
from hub.ports import ChannelDelivery
from hub.services import orders
from hub.storage.tables import ProcessedMessage, utcnow
from hub.storage.upsert import insert_ignore

log = logging.getLogger(__name__)
KINDS = {S.DISPATCHED: "same_city", S.SHIPPED: "express"}
SENT = "channel.delivery.sent"


def sent_key(order_id: str, carrier: str, waybill: str) -> str:
    digest = hashlib.sha256(f"{carrier}|{waybill}".encode()).hexdigest()[:32]
    return f"{order_id}:{digest}"


def channel_delivery_send(ctx: HubContext, event: OrderStatusChanged) -> None:
    with ctx.reader() as uow:
        order = orders.get(uow, event.order_id)
        channel = ctx.config.channel(order.channel)
        if channel is None or not channel.publish_to or not order.external_id:
            return                                   # an order the hub took itself: nothing to tell
        send = getattr(ctx.connectors.channel(channel.publish_to), "send_delivery", None)
        if send is None:
            return                                   # the channel shows no delivery of ours
        shipment = active_shipment(uow, order.id)
        if shipment is None:
            raise LookupError(f"order {order.id} is {event.to_status} without an active shipment")
        carrier, waybill, kind = shipment.carrier, shipment.shipment_ref, shipment.kind
        key = sent_key(order.id, carrier, waybill)
        told = uow.session.execute(select(ProcessedMessage.message_id).where(
            ProcessedMessage.consumer == SENT, ProcessedMessage.message_id == key)).first()
        lines = tuple((line.sku, line.qty) for line in orders.kept_lines(order) if line.qty > 0)
        external_id, order_id = order.external_id, order.id
    if told is not None:
        log.info("order %s: %s already told of %s %s", order_id, channel.publish_to, carrier, waybill)
        return
    company = ctx.connectors.express_courier(carrier).company_code() if kind == "express" else carrier
    send(external_id, ChannelDelivery(kind=KINDS.get(S(event.to_status), "same_city"), company=company,
                                      waybill=waybill, lines=lines))
    with ctx.uow() as uow:
        insert_ignore(uow.session, ProcessedMessage, {"consumer": SENT, "message_id": key, "processed_at": utcnow()})
        uow.commit()
    log.info("order %s: %s told it left with %s %s", order_id, channel.publish_to, carrier, waybill)

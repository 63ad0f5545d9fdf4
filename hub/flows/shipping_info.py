"""The mini-program platform's shipping-info upload: self-pickup when the order is ready,
same-city when a rider is booked, express with the waybill when shipped.

A consumer of its own, so the payment platform being down delays only this upload, never the
courier booking or the POS.

Once per real change: WeChat takes a payment's first upload and at most one re-upload (每笔支付单仅有一次
重新发货机会), so what was uploaded is remembered (payment, logistics type, waybill) and the same again is
not sent — a re-booked rider (dispatched again) changes nothing WeChat is told, a new waybill does.
"""
from __future__ import annotations

import hashlib
import logging

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.domain.order_states import OrderStatus
from hub.events import OrderStatusChanged
from hub.flows.delivery import active_shipment
from hub.services import orders
from hub.storage.tables import ProcessedMessage, utcnow
from hub.storage.upsert import insert_ignore

log = logging.getLogger(__name__)
S = OrderStatus
LOGISTICS = {S.READY_FOR_PICKUP: "pickup", S.DISPATCHED: "same_city", S.SHIPPED: "express"}
# What was uploaded, kept as a processed "message" of this pseudo-consumer: (payment, logistics, waybill).
UPLOADED = "wechat.shipping_info.uploaded"


def upload_key(order_id: str, payment_ref: str, logistics: str, tracking_no: str | None) -> str:
    """The upload's identity: the same key is the same information told WeChat again."""
    digest = hashlib.sha256(f"{payment_ref}|{logistics}|{tracking_no or ''}".encode()).hexdigest()[:32]
    return f"{order_id}:{digest}"


def shipping_info_upload(ctx: HubContext, event: OrderStatusChanged) -> None:
    with ctx.reader() as uow:
        order = orders.get(uow, event.order_id)
        payment_ref = order.payment_ref
        paid_here = payment_ref is not None and ctx.connectors.has("payment")
        payment = ctx.connectors.payment_platform_for(order) if paid_here else None
        if payment is None or payment_ref is None:  # unpaid, or paid on the channel's platform: nothing to tell
            log.info("order %s: no platform payment to attach shipping info to", order.id)
            return
        logistics = LOGISTICS[S(event.to_status)]
        tracking_no = carrier = None
        if logistics == "express":
            shipment = active_shipment(uow, order.id)
            if shipment is None:
                raise LookupError(f"order {order.id} shipped without an active waybill")
            tracking_no, carrier = shipment.shipment_ref, shipment.carrier
        snap = orders.snapshot(order)
        key = upload_key(order.id, payment_ref, logistics, tracking_no)
        told = uow.session.execute(select(ProcessedMessage.message_id).where(
            ProcessedMessage.consumer == UPLOADED, ProcessedMessage.message_id == key)).first()
    if told is not None:
        log.info("order %s: shipping info (%s) already uploaded; nothing new to tell", snap.order_id, logistics)
        return
    company = express_company(ctx, carrier) if carrier else None
    payment.upload_shipping_info(snap, payment_ref, logistics, tracking_no, company)
    with ctx.uow() as uow:
        insert_ignore(uow.session, ProcessedMessage, {"consumer": UPLOADED, "message_id": key,
                                                      "processed_at": utcnow()})
        uow.commit()
    log.info("order %s: shipping info uploaded (%s)", snap.order_id, logistics)


def express_company(ctx: HubContext, carrier: str) -> str:
    """The courier company's code, as the carrier's mapping names it for tracking."""
    return ctx.connectors.express_courier(carrier).company_code()

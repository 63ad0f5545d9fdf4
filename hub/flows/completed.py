"""A completed order (any fulfilment type) goes to the ERP and earns CRM points.

Two consumers, so the ERP being down never holds back the points, nor the other way round.
Both systems dedupe on the hub's order id: a repeat gets the same document / no new points.
"""
from __future__ import annotations

import logging

from sqlalchemy import select, update

from hub.bootstrap import HubContext
from hub.domain.model import Buyer
from hub.domain.order_states import OrderStatus
from hub.events import OrderStatusChanged
from hub.services import erp_feed, orders
from hub.storage.tables import ErpFeedEntry

log = logging.getLogger(__name__)
S = OrderStatus


def erp_sales_order(ctx: HubContext, event: OrderStatusChanged) -> None:
    """Into the ERP's pull feed (once), and pushed over SOAP where the ERP takes pushes.

    The feed row is committed before the ERP is called, and the document number recorded after
    with one short UPDATE: no lock on `erp_feed` is held while the ERP answers."""
    with ctx.uow() as uow:
        order = orders.get(uow, event.order_id)
        erp_feed.add_to_feed(uow, order.id)
        snap = orders.snapshot(order)
        uow.commit()
    erp = ctx.config.systems.get(ctx.connectors.system_for("erp") or "")
    if erp is None or not erp.get("push_orders"):
        return
    with ctx.reader() as uow:
        if uow.session.execute(select(ErpFeedEntry.erp_document_no)
                               .where(ErpFeedEntry.order_id == snap.order_id)).scalar_one():
            return
    document_no = ctx.connectors.erp().push_sales_order(snap)       # the ERP dedupes on the order id
    with ctx.uow() as uow:
        uow.session.execute(update(ErpFeedEntry).where(ErpFeedEntry.order_id == snap.order_id,
                                                       ErpFeedEntry.erp_document_no.is_(None))
                            .values(erp_document_no=document_no))
        uow.commit()
    log.info("order %s is ERP document %s", snap.order_id, document_no)


def crm_points(ctx: HubContext, event: OrderStatusChanged) -> None:
    """One point per yuan spent, to the buyer's CRM member (created on the first order)."""
    if not ctx.connectors.has("crm"):
        return
    with ctx.reader() as uow:
        order = orders.get(uow, event.order_id)
        order_id, buyer, points = order.id, Buyer(**order.buyer), order.total_fen // 100
    crm = ctx.connectors.crm()
    member = crm.upsert_member(buyer)
    if points > 0:
        crm.add_points(member, order_id, points)         # the CRM dedupes on the order id
    log.info("order %s: %d point(s) to member %s", order_id, points, member)

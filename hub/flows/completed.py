"""A completed order (any fulfilment type) goes to the ERP and earns CRM points.

Two consumers, so the ERP being down never holds back the points, nor the other way round.
Both systems dedupe on the hub's order id: a repeat gets the same document / no new points.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.domain.model import Buyer
from hub.domain.order_states import OrderStatus
from hub.flows import reacts
from hub.services import erp_feed, orders
from hub.storage.tables import ErpFeedEntry
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus


@reacts("erp_sync.sales_order", to=[S.COMPLETED])
def push_sales_order(ctx: HubContext, uow: UnitOfWork, data: dict[str, Any]) -> None:
    """Into the ERP's pull feed (once), and pushed over SOAP where the ERP takes pushes."""
    order = orders.get(uow, data["order_id"])
    erp_feed.add_to_feed(uow, order.id)
    erp = ctx.config.systems.get("erp")
    if erp is None or not erp.get("push_orders"):
        return
    entry = uow.session.execute(select(ErpFeedEntry).where(ErpFeedEntry.order_id == order.id)).scalar_one()
    if entry.erp_document_no:
        return
    entry.erp_document_no = ctx.connectors["erp"].push_sales_order(orders.snapshot(order))
    log.info("order %s is ERP document %s", order.id, entry.erp_document_no)


@reacts("erp_sync.crm_points", to=[S.COMPLETED])
def award_points(ctx: HubContext, uow: UnitOfWork, data: dict[str, Any]) -> None:
    """One point per yuan spent, to the buyer's CRM member (created on the first order)."""
    if "crm" not in ctx.connectors:
        return
    order = orders.get(uow, data["order_id"])
    crm = ctx.connectors["crm"]
    member = crm.upsert_member(Buyer(**order.buyer))
    points = order.total_fen // 100
    if points > 0:
        crm.add_points(member, order.id, points)
    log.info("order %s: %d point(s) to member %s", order.id, points, member)

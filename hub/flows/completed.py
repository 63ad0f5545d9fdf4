"""A completed order (any fulfilment type) goes to the ERP and earns CRM points; a return or a
refund after completion goes to the ERP as a return order / credit memo.

Separate consumers, so the ERP being down never holds back the points, nor the other way round.
Both systems dedupe on the hub's order id: a repeat gets the same document / no new points.
A return or refund is sent once per return id (`erp_returns`): the refund's number, or the
order's one return (line-level returns come later), with the order's lines and the amount.
"""
from __future__ import annotations

import logging

from sqlalchemy import select, update

from hub.bootstrap import HubContext
from hub.domain import points as earned_points
from hub.domain import refunds as refund_rules
from hub.domain.model import Buyer, ErpReturn, OrderLine
from hub.domain.order_states import OrderStatus
from hub.domain.refunds import RefundStatus
from hub.events import ChannelRefundAgreed, OrderStatusChanged
from hub.services import erp_feed, money_owed, orders
from hub.storage.tables import ChannelRefundRow, ErpFeedEntry, ErpReturnEntry, OrderRow, utcnow
from hub.storage.uow import UnitOfWork, must_get
from hub.storage.upsert import insert_ignore

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


def erp_return_order(ctx: HubContext, event: OrderStatusChanged) -> None:
    """A return or refund of an order the ERP holds as a sale: once per return id, over SOAP.

    Only after completion (the order is in the ERP feed); a refund of an order already returned
    is that return's money, which the return order already credits, so it is not sent again."""
    erp = ctx.config.systems.get(ctx.connectors.system_for("erp") or "")
    if erp is None or not erp.get("push_orders") or event.from_status == S.RETURNED:
        return
    with ctx.uow() as uow:
        order = orders.get(uow, event.order_id)
        if not _in_feed(uow, order.id):
            return                    # never completed: the ERP holds no sale to take back
        ret = _erp_return(uow, order, "return" if event.to_status == S.RETURNED else "refund",
                          money_back=event.from_status != S.REFUNDED)
        insert_ignore(uow.session, ErpReturnEntry, {"return_id": ret.return_id, "order_id": order.id,
                                                     "kind": ret.kind, "added_at": utcnow()})
        uow.commit()
    _send_return(ctx, ret)


def erp_refund_lines(ctx: HubContext, event: ChannelRefundAgreed) -> None:
    """A channel's partial refund of a completed order (its lines stay as the ERP holds them): a credit memo for
    the refunded lines at their discounted amount, once per refund (`erp_returns`, id `<channel>:<refund id>`)."""
    erp = ctx.config.systems.get(ctx.connectors.system_for("erp") or "")
    if erp is None or not erp.get("push_orders"):
        return
    return_id = f"{event.channel}:{event.refund_id}"
    with ctx.uow() as uow:
        order = orders.get(uow, event.order_id)
        row = must_get(uow.session, ChannelRefundRow, (event.channel, event.refund_id))
        by_sku = {x.sku: x for x in order.lines}
        lines = tuple(OrderLine(sku, int(qty), by_sku[sku].unit_price_fen,
                                refund_rules.line_refund_fen(by_sku[sku], int(qty))) for sku, qty in row.lines or [])
        ret = ErpReturn(return_id, "refund", order.id, lines, sum(x.amount_fen or 0 for x in lines),
                        order.location_id, utcnow())
        insert_ignore(uow.session, ErpReturnEntry, {"return_id": return_id, "order_id": order.id, "kind": "refund",
                                                     "added_at": utcnow()})
        uow.commit()
    _send_return(ctx, ret)


def _send_return(ctx: HubContext, ret: ErpReturn) -> None:
    with ctx.reader() as uow:
        if must_get(uow.session, ErpReturnEntry, ret.return_id).erp_document_no:
            return
    push = getattr(ctx.connectors.erp(), "push_return", None)
    document_no = push(ret) if push is not None else None
    if document_no is None:
        log.info("order %s: the ERP mapping has no create_return_order; %s %s not sent", ret.order_id, ret.kind,
                 ret.return_id)
        return
    with ctx.uow() as uow:
        uow.session.execute(update(ErpReturnEntry).where(ErpReturnEntry.return_id == ret.return_id,
                                                         ErpReturnEntry.erp_document_no.is_(None))
                            .values(erp_document_no=document_no))
        uow.commit()
    log.info("order %s: %s %s is ERP document %s", ret.order_id, ret.kind, ret.return_id, document_no)


def _in_feed(uow: UnitOfWork, order_id: str) -> bool:
    return uow.session.execute(select(ErpFeedEntry.seq).where(ErpFeedEntry.order_id == order_id)).first() is not None


def _erp_return(uow: UnitOfWork, order: OrderRow, kind: str, money_back: bool) -> ErpReturn:
    """The order's lines; for a refund the money the platform paid back (its refund's number is the
    id), for a return after a refund nothing more (the money went back with that refund)."""
    lines = orders.kept_lines(order)
    if kind == "return":
        return ErpReturn(f"{order.id}-return", kind, order.id, lines, order.total_fen if money_back else 0,
                         order.location_id, utcnow())
    paid_back = [r for r in money_owed.of_order(uow, order.id) if r.status == RefundStatus.SUCCESS]
    refund_id = paid_back[-1].refund_no if paid_back else f"{order.id}-refund"
    return ErpReturn(refund_id, kind, order.id, lines, sum(r.amount_fen for r in paid_back) or order.total_fen,
                     order.location_id, utcnow())


def crm_points(ctx: HubContext, event: OrderStatusChanged) -> None:
    """One point per yuan the buyer kept at completion (`domain/points.py`: the total less every refund owed
    before it, short picks included), to the buyer's CRM member (created on the first order)."""
    if not ctx.connectors.has("crm"):
        return
    with ctx.reader() as uow:
        order = orders.get(uow, event.order_id)
        order_id, buyer = order.id, Buyer(**order.buyer)
        points = earned_points.earned(order.total_fen, money_owed.owed_back(uow, order))
    crm = ctx.connectors.crm()
    member = crm.upsert_member(buyer)
    if points > 0:
        crm.add_points(member, order_id, points)         # the CRM dedupes on the order id
    log.info("order %s: %d point(s) to member %s", order_id, points, member)

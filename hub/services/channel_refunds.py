"""A channel's refund of its own order (a platform's 部分退款, or 全额退款): the platform takes and gives back
the money, the hub answers. Decided once per refund id, in the transaction that applies it: agreed when the
order still has every unit asked for, rejected otherwise (with the reason the platform shows the buyer).

Agreed, the refunded units come off the order's lines (`qty`, and `qty_picked` once picked; the line's
amount by `domain/refunds.line_refund_fen`), so the ERP is sent the lines the buyer kept, as after a short
pick (`orders.kept_lines`). Units the store still holds (reserved: before the pick, or picked and not yet
handed over) go back to available stock (`inventory.release_part`); units that left with a rider or the
buyer are money only — a refund never moves stock, only a return does. Nothing left: the order is refunded
as a whole (`payments.refunded`: cancelled first if the goods never left). After completion the ERP holds the
sale as it was: the lines stay, and the refunded lines go to it as a credit memo (`channel.refund_agreed` ->
`flows/completed.erp_refund_lines`). A partial refund is also recorded as a refund done on the order's payment
(its points follow through `order.refunded`). No WeChat Pay: not ours to ask.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from hub import events
from hub.domain import refunds as refund_rules
from hub.domain.errors import BadInput, HubError, NotFound
from hub.domain.model import ChannelRefundRequest
from hub.domain.order_states import OrderStatus
from hub.domain.refunds import RefundStatus
from hub.services import erp_feed, inventory, money_owed, orders
from hub.services.payments import refunded
from hub.storage.tables import ChannelRefundRow, OrderRow, OrderTransition
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus
OVER = (S.CANCELLED, S.REFUNDED, S.RETURNED)       # nothing left to refund
REFUND_ID_MAX = 64                                   # channel_refunds.refund_id


class RefundIdReused(HubError):
    """A refund id already decided for another order: its answer is that order's, never this one's (agreeing it
    here would tell the platform to pay back an order whose lines and stock the hub never touched)."""

    code = "refund_id_reused"


def order_of(uow: UnitOfWork, channel: str, external_id: str) -> OrderRow:
    order = uow.session.execute(select(OrderRow).where(OrderRow.channel == channel,
                                                       OrderRow.external_id == external_id)).scalar_one_or_none()
    if order is None:            # its push may not have come yet: 404, so the platform asks again
        raise NotFound(f"no {channel} order {external_id!r}")
    return orders.get(uow, order.id, lock=True)


def refunded_after_sale(uow: UnitOfWork, order_id: str) -> dict[str, int]:
    """Units per SKU refunded after completion (credit memos): the lines still show them."""
    out: dict[str, int] = {}
    for (lines,) in uow.session.execute(select(ChannelRefundRow.lines).where(
            ChannelRefundRow.order_id == order_id, ChannelRefundRow.agreed.is_(True),
            ChannelRefundRow.after_sale.is_(True))):
        for sku, qty in lines or []:
            out[sku] = out.get(sku, 0) + int(qty)
    return out


def refusal(order: OrderRow, request: ChannelRefundRequest, credited: dict[str, int] | None = None) -> str:
    """Why the refund cannot be agreed ("" when it can): each line the order's, named once, 1.. what is left
    (less `credited`, what refunds after completion took without changing the lines)."""
    if order.status in OVER:
        return f"order is {order.status}"
    if request.lines is None:
        return ""
    credited = credited or {}
    left = {x.sku: (x.qty if x.qty_picked is None else x.qty_picked) - credited.get(x.sku, 0) for x in order.lines}
    seen: set[str] = set()
    for sku, qty in request.lines:
        if sku not in left:
            return f"{sku} is not a line of the order"
        if sku in seen:
            return f"{sku} is named twice"
        seen.add(sku)
        if not 0 < qty <= left[sku]:
            return f"{sku}: {qty} asked, {left[sku]} left to refund"
    return ""


def decide(uow: UnitOfWork, system: str, request: ChannelRefundRequest, now: datetime) -> ChannelRefundRow:
    """The hub's answer to the refund (the same answer for the same refund id), applied if agreed."""
    if len(request.refund_id) > REFUND_ID_MAX:     # the column's width: a clear refusal, not the database's
        raise BadInput(f"refund_id: longer than {REFUND_ID_MAX} characters")
    row = _decided(uow, request)
    if row is not None:
        return row
    order = order_of(uow, request.channel, request.external_order_id)
    # Read again under the order's lock: the same push delivered at once waited on that lock while the first
    # decided, and must find its row (not insert a second one: a key conflict answered 409).
    row = _decided(uow, request)
    if row is not None:
        return row
    # Completed (in the ERP's feed, written with the completion): the ERP holds the sale as it was.
    after_sale = erp_feed.in_feed(uow, order.id)
    why = refusal(order, request, refunded_after_sale(uow, order.id) if after_sale else None)
    lines = None if request.lines is None else [[sku, qty] for sku, qty in request.lines]
    row = ChannelRefundRow(channel=request.channel, refund_id=request.refund_id, order_id=order.id, lines=lines,
                           agreed=not why, reason=(why or request.reason or "agreed")[:200], decided_at=now,
                           after_sale=after_sale and request.lines is not None)
    uow.session.add(row)
    if why:
        log.info("order %s: %s refund %s rejected: %s", order.id, system, request.refund_id, why)
        return row
    detail = f"{system} refund {request.refund_id}" + (f": {request.reason}" if request.reason else "")
    if request.lines is not None:       # the timeline (which lines, how many, money) and the money back as done
        _history(order, system, request, now)
        by_sku = {x.sku: x for x in order.lines}
        _paid_back(uow, order, system, request.refund_id, detail,
                   sum(refund_rules.line_refund_fen(by_sku[sku], qty) for sku, qty in request.lines))
    if row.after_sale:                  # the goods are the buyer's: money only, and a credit memo for the ERP
        uow.emit(events.ChannelRefundAgreed(order.id, request.channel, request.refund_id))
        log.info("order %s: %s refund %s agreed after completion (credit memo)", order.id, system,
                 request.refund_id)
        return row
    if request.lines is not None:
        _take_off(uow, order, request.refund_id, request.lines, detail)
    if request.lines is None or all(x.qty == 0 or x.qty_picked == 0 for x in order.lines):
        refunded(uow, order, system, detail)                  # the whole order: cancelled or refunded
    log.info("order %s: %s refund %s agreed (%s)", order.id, system, request.refund_id,
             "whole order" if request.lines is None else ", ".join(f"{s} x{q}" for s, q in request.lines))
    return row


def _decided(uow: UnitOfWork, request: ChannelRefundRequest) -> ChannelRefundRow | None:
    row = uow.session.get(ChannelRefundRow, (request.channel, request.refund_id), populate_existing=True)
    if row is None:
        return None
    order_id = uow.session.execute(select(OrderRow.id).where(
        OrderRow.channel == request.channel, OrderRow.external_id == request.external_order_id)).scalar_one_or_none()
    if order_id != row.order_id:
        raise RefundIdReused(f"{request.channel} refund {request.refund_id} was decided for another order, "
                             f"not {request.external_order_id!r}")
    return row


PART_REFUNDED = "part_refunded"     # a history entry, not a state: a partial refund leaves the status alone


def _history(order: OrderRow, system: str, request: ChannelRefundRequest, now: datetime) -> None:
    """One timeline entry for a line refund the platform paid back, written before the lines change (the money
    is the lines' discounted amount per unit, as the platform's own refund is taken to be)."""
    by_sku = {x.sku: x for x in order.lines}
    money = [(sku, qty, refund_rules.line_refund_fen(by_sku[sku], qty)) for sku, qty in request.lines or ()]
    what = ", ".join(f"{sku} x{qty} ({fen / 100:.2f} yuan)" for sku, qty, fen in money)
    detail = (f"{system} refund {request.refund_id}: {what}; {sum(f for _, _, f in money) / 100:.2f} yuan back "
              f"through {system}" + (f" ({request.reason})" if request.reason else ""))
    at = max(now, order.transitions[-1].at) if order.transitions else now       # the history never goes back
    order.transitions.append(OrderTransition(from_status=order.status, to_status=PART_REFUNDED, at=at,
                                             source=system, detail=detail))


def _paid_back(uow: UnitOfWork, order: OrderRow, system: str, refund_id: str, detail: str, amount_fen: int) -> None:
    """A partial refund recorded on the order's payment, done (the platform paid it): what the points rules
    read (`domain/points.py`: not earned on before completion, taken back after) and `order.refunded`. Its
    number is the platform's refund id, so a repeated push records nothing twice (decided once anyway)."""
    if order.paid_at is None or not order.payment_ref:
        return
    held = [(r.amount_fen, r.status) for r in money_owed.of_payment(uow, order.id, order.payment_ref)]
    amount = min(amount_fen, refund_rules.remaining(order.total_fen, held))
    if amount > 0:
        money_owed.record(uow, order, payment_ref=order.payment_ref, paid_fen=order.total_fen, cause="channel",
                          source=system, reason=detail, status=RefundStatus.SUCCESS, amount_fen=amount,
                          refund_no=f"CR-{system}-{refund_id}"[:64])


def _take_off(uow: UnitOfWork, order: OrderRow, refund_id: str, lines: tuple[tuple[str, int], ...],
              detail: str) -> None:
    by_sku = {x.sku: x for x in order.lines}
    for sku, qty in lines:
        line = by_sku[sku]
        line.amount_fen = refund_rules.line_amount_fen(line) - refund_rules.line_refund_fen(line, qty)
        line.qty -= qty
        if line.qty_picked is not None:
            line.qty_picked -= qty
        line.qty_refunded = (line.qty_refunded or 0) + qty
        # Still in the store (reserved): back to available. Gone with a rider or the buyer: money only.
        inventory.release_part(uow, order.id, sku, qty, f"refund:{refund_id}", detail)


def told(uow: UnitOfWork, channel: str, refund_id: str, now: datetime) -> None:
    row = uow.session.get(ChannelRefundRow, (channel, refund_id), with_for_update=True)
    if row is not None and row.told_at is None:
        row.told_at = now

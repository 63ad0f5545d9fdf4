"""Refunds followed to their end: asked for (the refund API; an `order.refund_due` that came without
a refund row), the platform's answer recorded, its notification applied.

The order reaches `refunded` only on the platform's word that the money went back (a SUCCESS
notification or a signed SUCCESS answer) and only when every fen of its payment went back; a
partial refund leaves the order's status alone, and a refund of a second payment never moves it.
Refund rows change under their order's lock (`orders.get(..., lock=True)` first), as orders do.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from hub.domain import refunds as rules
from hub.domain.errors import BadInput, IllegalTransition, NotFound
from hub.domain.model import PaymentNotice, RefundAnswer
from hub.domain.order_states import OrderStatus, allowed
from hub.domain.refunds import RefundStatus
from hub.events import OrderRefundDue
from hub.services import money_owed, orders
from hub.storage.tables import OrderRow, RefundRow, utcnow
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
S = OrderStatus
R = RefundStatus


def by_no(uow: UnitOfWork, refund_no: str) -> RefundRow | None:
    return uow.session.execute(select(RefundRow).where(RefundRow.refund_no == refund_no)).scalar_one_or_none()


def _by_key(uow: UnitOfWork, order_id: str, key: str) -> RefundRow | None:
    stmt = select(RefundRow).where(RefundRow.order_id == order_id, RefundRow.request_key == key)
    return uow.session.execute(stmt).scalar_one_or_none()


# -- asking ------------------------------------------------------------------------------------------

def ask(uow: UnitOfWork, order: OrderRow, *, amount_fen: int | None, reason: str, source: str,
        idempotency_key: str) -> tuple[RefundRow, bool]:
    """A refund of the order's payment (`POST /orders/{id}/refund`): `amount_fen`, or all that is left.

    The same Idempotency-Key answers the same refund; used for a different amount it is refused.
    Returns (refund, created). The order must be locked by the caller."""
    key = f"api:{idempotency_key}"
    existing = _by_key(uow, order.id, key)
    if existing is not None:
        if amount_fen is not None and amount_fen != existing.amount_fen:
            raise orders.IdempotencyConflict("this Idempotency-Key was used for a refund of another amount")
        return existing, False
    if order.paid_at is None or not order.payment_ref:
        raise BadInput(f"order {order.id} has not been paid: there is nothing to refund")
    row = money_owed.owe(uow, order, payment_ref=order.payment_ref, paid_fen=order.total_fen, cause="asked",
                         source=source, reason=reason or "refund asked for", amount_fen=amount_fen,
                         request_key=key)
    return row, True


def for_event(uow: UnitOfWork, due: OrderRefundDue, message_id: str) -> RefundRow | None:
    """The refund an `order.refund_due` asks for. Events the hub's services emit name their refund
    (`refund_no`); one that comes without (`{order_id, payment_ref[, amount_fen, reason]}`) gets a
    row now, keyed by the event, so a retry or a replay asks for the same refund. None when nothing
    is left to refund on that payment."""
    order = orders.get(uow, due.order_id, lock=True)
    if due.refund_no:
        row = by_no(uow, due.refund_no)
        if row is None or row.order_id != order.id:
            raise NotFound(f"no refund {due.refund_no!r} for order {order.id}")
        return row
    key = f"event:{message_id}"
    row = _by_key(uow, order.id, key)
    if row is not None:
        return row
    payment_ref = due.payment_ref or order.payment_ref
    if order.paid_at is None or not payment_ref:
        raise BadInput(f"order {order.id} has no payment to refund")
    held = [(r.amount_fen, r.status) for r in money_owed.of_payment(uow, order.id, payment_ref)]
    if rules.remaining(order.total_fen, held) == 0:
        log.info("order %s: refund due, but payment %s is already refunded in full", order.id, payment_ref)
        return None
    return money_owed.record(uow, order, payment_ref=payment_ref, paid_fen=order.total_fen,
                             cause="due", source="hub",
                             reason=str(due.reason or "refund due"), amount_fen=due.amount_fen,
                             request_key=key)


# -- the platform's word -----------------------------------------------------------------------------

def record_answer(uow: UnitOfWork, answer: RefundAnswer, source: str) -> RefundRow:
    """The platform took the request: PROCESSING (a notification follows), or already final."""
    row = _locked(uow, answer.refund_no)
    row.platform_refund_id = answer.refund_id or row.platform_refund_id
    if answer.amount_fen and answer.amount_fen != row.amount_fen:
        log.warning("refund %s: the platform took %d fen, the hub asked %d", row.refund_no, answer.amount_fen,
                    row.amount_fen)
        row.amount_fen = answer.amount_fen
    if row.status == R.FAILED:
        row.detail = None                   # a refusal of an earlier try is history now
    advance(uow, row, rules.PLATFORM_STATUS[answer.status], source, answer.at)
    return row


def record_refusal(uow: UnitOfWork, refund_no: str, error: str) -> RefundRow:
    """The platform refused the request: failed, for an operator (its dead letter replays it)."""
    row = _locked(uow, refund_no)
    if row.status in rules.TO_ASK:
        row.status, row.updated_at = R.FAILED, utcnow()
    row.detail = error[:2000]
    log.warning("refund %s of order %s refused: %s", row.refund_no, row.order_id, error)
    return row


def apply_notice(uow: UnitOfWork, notice: PaymentNotice, source: str) -> RefundRow:
    """A verified refund notification (SUCCESS, ABNORMAL, CLOSED), applied once; a repeat changes nothing.

    A refund the hub never asked for (made in the merchant platform by hand) is recorded as the
    platform reports it, so the order still tells the truth."""
    order = orders.get(uow, notice.order_ref, lock=True)
    row = by_no(uow, notice.refund_no) if notice.refund_no else None
    if row is None:
        row = money_owed.record(uow, order, payment_ref=notice.transaction_id,
                                paid_fen=notice.paid_fen or order.total_fen, cause="platform", source=source,
                                reason="refunded at the payment platform", amount_fen=notice.amount_fen,
                                status=R.PROCESSING, refund_no=notice.refund_no or None)
    elif row.order_id != order.id:
        raise BadInput(f"refund {row.refund_no} belongs to order {row.order_id}, not {order.id}")
    row.platform_refund_id = notice.refund_id or row.platform_refund_id
    if notice.amount_fen != row.amount_fen and notice.refund_status == "SUCCESS":
        log.warning("refund %s: the platform paid back %d fen, the hub asked %d", row.refund_no, notice.amount_fen,
                    row.amount_fen)
        row.amount_fen = notice.amount_fen          # what went back is what counts
    advance(uow, row, rules.PLATFORM_STATUS[notice.refund_status], source, notice.at)
    return row


def advance(uow: UnitOfWork, row: RefundRow, status: str, source: str, at: datetime | None = None) -> bool:
    """Move a refund forward (never back); the money back in full moves its order to refunded."""
    if not rules.moves_forward(row.status, status):
        return False
    row.status, row.updated_at = status, utcnow()
    if status == R.ABNORMAL:
        row.detail = "the platform could not pay the buyer back (account closed or frozen): refund it offline " \
                     "or ask again once the buyer's account works"
        log.warning("refund %s of order %s is ABNORMAL: an operator must act", row.refund_no, row.order_id)
    elif status == R.CLOSED:
        row.detail = "the refund was closed: nothing went back"
    if status == R.SUCCESS:
        row.settled_at = at or utcnow()
        money_owed.refunded(uow, row)               # once: a row reaches success once
        _settle_order(uow, row, source, at)
    return True


def _settle_order(uow: UnitOfWork, row: RefundRow, source: str, at: datetime | None) -> None:
    order = orders.get(uow, row.order_id, lock=True)
    if row.payment_ref != order.payment_ref:
        return                              # a second payment went back: the order keeps its own
    refunds = [(r.amount_fen, r.status) for r in money_owed.of_payment(uow, order.id, order.payment_ref)]
    if not rules.fully_refunded(row.paid_fen, refunds):
        return                              # partial: the order's status stays
    detail = f"{rules.refunded(refunds)} fen back to the buyer (refund {row.refund_no})"
    if order.status == S.REFUNDED:
        return
    if order.status != S.CANCELLED and not allowed(order.fulfillment_type, order.status, S.REFUNDED):
        if orders.cancel_paid_back(uow, order, source, "refunded in full"):
            return                          # a rider is booked: his courier decides (cancelled, then refunded)
        if not allowed(order.fulfillment_type, order.status, S.CANCELLED):
            # Goods on their way: the money is back, the order's journey goes on; operations see the refund.
            log.warning("order %s refunded in full while %s: status left alone", order.id, order.status)
            return
        # Not orders.cancel: that would owe a refund the platform has just made.
        orders.transition(uow, order, S.CANCELLED, source, "refunded in full", at)
    try:
        orders.transition(uow, order, S.REFUNDED, source, detail, at)
    except IllegalTransition as exc:        # the state machine says no: keep the money's truth, log the order's
        log.warning("order %s: %s", order.id, exc)


def _locked(uow: UnitOfWork, refund_no: str) -> RefundRow:
    row = by_no(uow, refund_no)
    if row is None:
        raise NotFound(f"no refund {refund_no!r}")
    orders.get(uow, row.order_id, lock=True)
    uow.session.refresh(row)
    return row


# -- what operations and buyers see -------------------------------------------------------------------

def view(row: RefundRow) -> dict[str, Any]:
    """A refund as the order shows it (times left to the caller to format)."""
    return {"refund_id": row.refund_no, "amount_fen": row.amount_fen, "status": row.status, "at": row.created_at,
            "settled_at": row.settled_at, "reason": row.reason, "cause": row.cause, "payment_ref": row.payment_ref}


STALE_AFTER = timedelta(minutes=30)   # a refund still asked-for or processing this long needs a look


def needing_operator(uow: UnitOfWork, statuses: tuple[str, ...] | None = None, limit: int = 200,
                     now: datetime | None = None) -> list[RefundRow]:
    """Refunds in `statuses`; by default those an operator must look at: abnormal, closed, refused, and
    any still requested or processing after STALE_AFTER (a platform down for long, a notification lost)."""
    where: ColumnElement[bool]
    if statuses is not None:
        where = RefundRow.status.in_(statuses)
    else:
        stale = (now or utcnow()) - STALE_AFTER
        where = or_(RefundRow.status.in_(tuple(rules.NEEDS_OPERATOR)),
                    and_(RefundRow.status.in_((R.REQUESTED, R.PROCESSING)), RefundRow.updated_at < stale))
    stmt = select(RefundRow).where(where).order_by(RefundRow.updated_at.desc()).limit(limit)
    return list(uow.session.execute(stmt).scalars())

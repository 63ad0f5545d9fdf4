"""Money the hub owes a buyer back: a refund row, numbered before anyone calls the platform, and
the `order.refund_due` event that makes `flows/refunds.py` ask for it — in the caller's transaction.

Orders (a paid cancellation, a payment after expiry, a second payment) and the refund API owe
through here; `services/refunds.py` follows the refund to its end. Kept apart from it so the order
service can owe without importing what imports it.
"""
from __future__ import annotations

import secrets

from sqlalchemy import select

from hub import events
from hub.domain import refunds as rules
from hub.domain.order_states import OrderStatus
from hub.domain.points import OwedBack
from hub.domain.refunds import RefundStatus
from hub.storage.tables import OrderRow, RefundRow, utcnow
from hub.storage.uow import UnitOfWork

REASON_MAX = 80           # WeChat Pay's `reason` is at most 80 characters


def of_order(uow: UnitOfWork, order_id: str) -> list[RefundRow]:
    stmt = select(RefundRow).where(RefundRow.order_id == order_id).order_by(RefundRow.id)
    return list(uow.session.execute(stmt).scalars())


def of_payment(uow: UnitOfWork, order_id: str, payment_ref: str) -> list[RefundRow]:
    return [r for r in of_order(uow, order_id) if r.payment_ref == payment_ref]


def owed_back(uow: UnitOfWork, order: OrderRow) -> list[OwedBack]:
    """The refunds of the order's own payment, as the points rules read them (`domain/points.py`)."""
    return [OwedBack(r.amount_fen, r.after_completion) for r in of_payment(uow, order.id, order.payment_ref or "")]


def new_refund_no(order_id: str) -> str:
    """out_refund_no: at most 64 of [0-9A-Za-z_-|*@]; the order id keeps it readable for operators."""
    return f"R{order_id}-{secrets.token_hex(4).upper()}"


def owe(uow: UnitOfWork, order: OrderRow, *, payment_ref: str, paid_fen: int, cause: str, source: str,
        reason: str, amount_fen: int | None = None, request_key: str | None = None) -> RefundRow:
    """Record a refund of `amount_fen` (default: what is left of the payment) and ask for it.

    Raises BadInput when nothing (or less than asked) is left to refund on that payment."""
    row = record(uow, order, payment_ref=payment_ref, paid_fen=paid_fen, cause=cause, source=source,
                 reason=reason, amount_fen=amount_fen, request_key=request_key)
    uow.emit(events.OrderRefundDue(order.id, payment_ref, row.amount_fen, row.reason, row.refund_no))
    return row


def refunded(uow: UnitOfWork, row: RefundRow) -> None:
    """The refund is done (success), whichever path recorded it: `order.refunded`, in the same transaction —
    the one place points follow refunds from (`flows/members.py` `crm_refund_points`). Callers move a row to
    success once (`refunds.advance` never twice; a row recorded done at once is new)."""
    uow.emit(events.OrderRefunded(row.order_id, row.refund_no, row.amount_fen, bool(row.after_completion)))


def record(uow: UnitOfWork, order: OrderRow, *, payment_ref: str, paid_fen: int, cause: str, source: str,
           reason: str, amount_fen: int | None = None, request_key: str | None = None,
           status: str = RefundStatus.REQUESTED, refund_no: str | None = None) -> RefundRow:
    """The refund row alone (no event): `owe`'s first half, and what the refund consumer writes for an
    `order.refund_due` that came without one."""
    existing = [(r.amount_fen, r.status) for r in of_payment(uow, order.id, payment_ref)]
    if status == RefundStatus.REQUESTED:
        amount = rules.amount_to_refund(paid_fen, existing, amount_fen)
    else:                 # the platform's word about a refund made elsewhere: recorded as it says
        amount = int(amount_fen or 0)
    now = utcnow()
    # whether the order had completed when this was owed: what its points earned and take back depend on
    after = any(t.to_status == OrderStatus.COMPLETED for t in order.transitions)
    row = RefundRow(refund_no=refund_no or new_refund_no(order.id), order_id=order.id, payment_ref=payment_ref,
                    paid_fen=paid_fen, amount_fen=amount, reason=(reason or cause)[:REASON_MAX], cause=cause,
                    source=source, request_key=request_key, status=status, after_completion=after, created_at=now,
                    updated_at=now)
    uow.session.add(row)
    uow.session.flush()
    if status == RefundStatus.SUCCESS:      # the platform's word that it is done already
        row.settled_at = now
        refunded(uow, row)
    return row

"""A refund that is due, asked of the payment platform (a paid order cancelled, paid after it expired,
paid twice, not collected, a refund asked for through the API, a delivery returned).

Read and commit (the refund row, numbered before the call: `out_refund_no` never changes), ask
the platform with no transaction open, record its signed answer in a new short transaction. A
crash after the platform took the refund only repeats the request by the same number, which the
platform answers with the same refund (paid once). A refusal marks the refund failed and parks the
event for an operator (`hub dlq replay` asks again by the same number); a transient failure is
retried, then parked. The money's outcome comes with the platform's notification
(`/callbacks/wechat_pay` → `services/refunds.apply_notice`), or at once in a SUCCESS answer; a refund
still processing long after it was taken is asked about (`follow_up`, a scheduler timer), in case its
notification was lost.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.consumers import current_message_id
from hub.domain.model import RefundRequest
from hub.domain.refunds import TO_ASK, RefundStatus
from hub.events import OrderRefundDue
from hub.flows import callback_url
from hub.ports import PermanentError
from hub.services import refunds
from hub.storage.tables import OrderRow, RefundRow, utcnow
from hub.storage.uow import must_get

log = logging.getLogger(__name__)


def ask_for_refund(ctx: HubContext, event: OrderRefundDue) -> None:
    message_id = current_message_id() or f"{event.order_id}:{event.payment_ref}"
    with ctx.uow() as uow:                       # 1. the refund, numbered and committed before any call
        row = refunds.for_event(uow, event, message_id)
        if row is None:
            uow.commit()
            return
        if row.status not in TO_ASK:
            log.info("refund %s of order %s is already %s", row.refund_no, row.order_id, row.status)
            return
        payment = ctx.connectors.payment_platform_for(must_get(uow.session, OrderRow, row.order_id))
        if payment is None:     # the channel's own platform took the payment, and refunds it
            log.info("refund %s of order %s: paid on the channel's platform; not ours to ask", row.refund_no,
                     row.order_id)
            uow.commit()
            return
        request = RefundRequest(refund_no=row.refund_no, order_ref=row.order_id, payment_ref=row.payment_ref,
                                paid_fen=row.paid_fen, amount_fen=row.amount_fen, reason=row.reason,
                                notify_url=callback_url(ctx.config, payment.name))
        uow.commit()
    try:                                         # 2. the platform, no transaction open
        answer = payment.request_refund(request)
    except PermanentError as exc:
        with ctx.uow() as uow:
            refunds.record_refusal(uow, request.refund_no, str(exc))
            uow.commit()
        raise                                    # parked: an operator sees the refund failed and may replay
    # Any other failure (the platform away, an unsigned answer) is retried by the consumer, then parked;
    # the refund stays requested under the same number.
    with ctx.uow() as uow:                       # 3. its answer, recorded
        row = refunds.record_answer(uow, answer, payment.name)
        uow.commit()
        log.info("refund %s of order %s (%d fen) taken by %s: %s", row.refund_no, row.order_id, row.amount_fen,
                 payment.name, row.status)


FOLLOW_UP_AFTER = timedelta(minutes=10)     # the platform notifies within seconds; ten minutes is a lost notification


def follow_up(ctx: HubContext, now: datetime | None = None, limit: int = 100) -> list[str]:
    """Ask the platform about refunds still processing FOLLOW_UP_AFTER after they were taken, and record
    its (signed) answer. One refund's failure stops nothing else; returns the refund numbers that moved."""
    cutoff = (now or utcnow()) - FOLLOW_UP_AFTER
    with ctx.reader() as uow:
        due = [(refund_no, ctx.connectors.payment_platform_for(order)) for refund_no, order in uow.session.execute(
            select(RefundRow.refund_no, OrderRow).join(OrderRow, OrderRow.id == RefundRow.order_id)
            .where(RefundRow.status == RefundStatus.PROCESSING, RefundRow.updated_at < cutoff)
            .order_by(RefundRow.updated_at).limit(limit)).tuples()]
    moved = []
    for refund_no, payment in due:
        if payment is None:             # the channel's own platform took it: not ours to ask
            continue
        try:
            answer = payment.query_refund(refund_no)          # no transaction open
            with ctx.uow() as uow:
                row = refunds.record_answer(uow, answer, payment.name)
                if row.status == RefundStatus.PROCESSING:
                    row.updated_at = utcnow()                 # asked now: next time in FOLLOW_UP_AFTER
                else:
                    moved.append(refund_no)
                uow.commit()
        except Exception as exc:  # noqa: BLE001 - the platform or our database away: the next run asks again
            log.warning("refund %s: follow-up query failed: %s", refund_no, exc)
    return moved

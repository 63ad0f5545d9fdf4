"""Payment reconciliation (对账): per payment system and day, its trade and refund bills against the hub's
payments and refunds (`hub.domain.payment_bills.compare`). Daily for yesterday (workers/scheduler.py) and on
demand (`hub reconcile payments`, `POST /admin/api/reconciliation/payments`).

The bills are downloaded with no transaction open; a bill that cannot be had, or whose digest does not match,
is kept as an `error` run — nothing compared, nothing repaired. A payment the hub missed (the bill's SUCCESS
for an order the hub still has unpaid, cancelled, or paid by another transaction) is applied through the
payment path, as its notification would have been (`payments.apply_notice`: paid, or owed back), each in its
own transaction; once applied the hub knows it, so the next run finds nothing to repair. The rest is kept
for an operator: the run with its counts, its difference rows, and `hub_payment_reconciliation_*` metrics."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.domain.errors import BadInput, HubError
from hub.domain.model import PaymentNotice
from hub.domain.payment_bills import Bill, Difference, HubOrder, HubPayment, HubRefund, compare
from hub.domain.refunds import RefundStatus
from hub.metrics import METRICS
from hub.ports import ConnectorError
from hub.services import payments
from hub.storage.tables import OrderRow, PaymentDifference, PaymentReconciliationRun, RefundRow, utcnow

log = logging.getLogger(__name__)
# WeChat Pay's bills follow Beijing's calendar: a day is 00:00 to 24:00 at UTC+8.
PLATFORM_TZ = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    system: str
    bill_date: str
    status: str
    differences: int
    repaired: int
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def platform_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(PLATFORM_TZ).date()


def yesterday(now: datetime | None = None) -> date:
    return platform_today(now) - timedelta(days=1)


def reconcile(ctx: HubContext, day: date, *, trigger: str = "operator", system: str | None = None,
              now: datetime | None = None) -> list[RunSummary]:
    """Compare `day` for every payment system (or `system`); one run kept per system. A future day is BadInput."""
    if day > platform_today(now):
        raise BadInput(f"bill_date {day.isoformat()} is in the future: the platform has no bill for it yet")
    names = list(ctx.connectors.names("payment"))
    if system is not None:
        if system not in names:
            raise BadInput(f"{system!r} is not a payment system in config.yaml")
        names = [system]
    return [_one(ctx, name, day, trigger) for name in names]


def _one(ctx: HubContext, system: str, day: date, trigger: str) -> RunSummary:
    started = utcnow()
    try:
        bill = ctx.connectors.payment(system).daily_bill(day)          # no transaction open while downloading
    except ConnectorError as exc:
        log.error("payment reconciliation %s %s: no usable bill: %s", system, day, exc)
        return _record(ctx, system, day, trigger, started, None, [], set(), error=str(exc))
    differences = _compare(ctx, system, bill)
    repaired = {i for i, d in enumerate(differences) if d.repairable and _repair(ctx, system, d, bill)}
    return _record(ctx, system, day, trigger, started, bill, differences, repaired)


def _window(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), PLATFORM_TZ)
    return start, start + timedelta(days=1)


def _compare(ctx: HubContext, system: str, bill: Bill) -> list[Difference]:
    """The hub's side read in one transaction, compared."""
    channels = [c.id for c in ctx.config.channels if ctx.connectors.payment_system_for(c.id) == system]
    start, end = _window(date.fromisoformat(bill.day))
    refs = {p.order_ref for p in bill.payments}
    with ctx.reader() as uow:
        s = uow.session
        rows = list(s.execute(select(OrderRow).where(OrderRow.id.in_(refs))).scalars()) if refs else []
        owed = list(s.execute(select(RefundRow.order_id, RefundRow.payment_ref, RefundRow.paid_fen)
                              .where(RefundRow.order_id.in_(refs))).tuples()) if refs else []
        paid_that_day = [HubPayment(o.id, o.payment_ref or "", o.total_fen) for o in s.execute(
            select(OrderRow).where(OrderRow.channel.in_(channels), OrderRow.paid_at >= start,
                                   OrderRow.paid_at < end, OrderRow.payment_ref.is_not(None))).scalars()]
        numbers = {r.refund_no for r in bill.refunds}
        refunds = {r.refund_no: HubRefund(r.order_id, r.refund_no, r.amount_fen, r.status) for r in s.execute(
            select(RefundRow).where(RefundRow.refund_no.in_(numbers))).scalars()} if numbers else {}
        refunded_that_day = [HubRefund(r.order_id, r.refund_no, r.amount_fen, r.status) for r in s.execute(
            select(RefundRow).join(OrderRow, OrderRow.id == RefundRow.order_id)
            .where(OrderRow.channel.in_(channels), RefundRow.status == RefundStatus.SUCCESS,
                   RefundRow.cause != "channel", RefundRow.settled_at >= start, RefundRow.settled_at < end))
            .scalars()]
    amounts = {o.payment_ref: o.total_fen for o in rows if o.payment_ref} | {ref: fen for _, ref, fen in owed}
    known: dict[str, set[str]] = {o.id: {o.payment_ref} if o.payment_ref else set() for o in rows}
    for order_id, ref, _ in owed:
        known.setdefault(order_id, set()).add(ref)
    hub_orders = {o.id: HubOrder(o.id, o.status, o.payment_ref, o.total_fen, frozenset(known.get(o.id, ())))
                  for o in rows if o.channel in channels}
    return compare(bill, hub_orders, paid_that_day, amounts, refunds, refunded_that_day)


def _repair(ctx: HubContext, system: str, d: Difference, bill: Bill) -> bool:
    """The missed payment applied as its notification would have been; False when the payment path refuses it."""
    line = next(p for p in bill.payments if p.transaction_id == d.transaction_id)
    notice = PaymentNotice(event="paid", order_ref=d.order_id, transaction_id=d.transaction_id,
                           amount_fen=line.amount_fen, at=_bill_time(line.at),
                           external_id=f"bill:{bill.day}:{d.transaction_id}")
    try:
        with ctx.uow() as uow:
            payments.apply_notice(uow, notice, f"{system}:bill")
            uow.commit()
    except HubError as exc:         # e.g. the amount is not the order's: for an operator
        log.warning("payment reconciliation %s: %s not repaired: %s", system, d.order_id, exc)
        return False
    log.warning("payment reconciliation %s: payment %s of order %s the hub missed applied from the bill",
                system, d.transaction_id, d.order_id)
    return True


def _bill_time(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=PLATFORM_TZ)
    except ValueError:
        return utcnow()


def _record(ctx: HubContext, system: str, day: date, trigger: str, started: datetime, bill: Bill | None,
            differences: list[Difference], repaired: set[int], error: str | None = None) -> RunSummary:
    with ctx.uow() as uow:
        run = PaymentReconciliationRun(
            system=system, bill_date=day.isoformat(), status="error" if error else "ok", trigger=trigger,
            bill_payments=len(bill.payments) if bill else 0, bill_refunds=len(bill.refunds) if bill else 0,
            differences=len(differences), repaired=len(repaired), error=error, started_at=started,
            finished_at=utcnow())
        uow.session.add(run)
        uow.session.flush()
        uow.session.add_all(PaymentDifference(
            run_id=run.id, kind=str(d.kind), order_id=d.order_id, transaction_id=d.transaction_id,
            refund_no=d.refund_no, bill_fen=d.bill_fen, hub_fen=d.hub_fen, repaired=i in repaired, detail=d.detail)
            for i, d in enumerate(differences))
        uow.commit()
        summary = RunSummary(run.id, system, run.bill_date, run.status, run.differences, run.repaired, error)
    METRICS.payment_reconciliation_runs.labels(system, summary.status).inc()
    for d in differences:
        METRICS.payment_reconciliation_differences.labels(system, str(d.kind)).inc()
    if repaired:
        METRICS.payment_reconciliation_repaired.labels(system).inc(len(repaired))
    return summary


def _view(run: PaymentReconciliationRun) -> dict[str, Any]:
    return {"run_id": run.id, "system": run.system, "bill_date": run.bill_date, "status": run.status,
            "trigger": run.trigger, "bill_payments": run.bill_payments, "bill_refunds": run.bill_refunds,
            "differences": run.differences, "repaired": run.repaired, "error": run.error,
            "started_at": run.started_at, "finished_at": run.finished_at}


def recent_runs(ctx: HubContext, limit: int = 30) -> list[dict[str, Any]]:
    with ctx.reader() as uow:
        rows = uow.session.execute(select(PaymentReconciliationRun)
                                   .order_by(PaymentReconciliationRun.id.desc()).limit(limit)).scalars()
        return [_view(r) for r in rows]


def run_detail(ctx: HubContext, run_id: int) -> dict[str, Any] | None:
    """A run with its difference lines, the ones an operator must look at (not repaired) first."""
    with ctx.reader() as uow:
        run = uow.session.get(PaymentReconciliationRun, run_id)
        if run is None:
            return None
        lines = uow.session.execute(select(PaymentDifference).where(PaymentDifference.run_id == run_id)
                                    .order_by(PaymentDifference.repaired, PaymentDifference.id)).scalars()
        return {**_view(run), "lines": [
            {"kind": d.kind, "order_id": d.order_id, "transaction_id": d.transaction_id, "refund_no": d.refund_no,
             "bill_fen": d.bill_fen, "hub_fen": d.hub_fen, "repaired": d.repaired, "detail": d.detail}
            for d in lines]}


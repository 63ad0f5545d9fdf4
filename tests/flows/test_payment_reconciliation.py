"""Payment reconciliation against the WeChat Pay simulator: a day's bills with each kind of mismatch found,
counted and kept; a missed payment repaired once; a bill whose digest does not match kept as an error."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from hub.domain.refunds import RefundStatus
from hub.metrics import METRICS
from hub.services import money_owed, orders
from hub.services import payment_reconciliation as recon
from hub.storage.tables import PaymentDifference, PaymentReconciliationRun, RefundRow, utcnow

LINE = [("TEA-001", 1, 1200)]


def _place(flow, key):
    return flow.place("pickup", LINE, store_id="S001", key=key)


def _settled_refund(flow, order_id, refund_no, fen):
    """A refund the hub holds as paid back (the platform's notification applied)."""
    with flow.ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        row = money_owed.record(uow, order, payment_ref=order.payment_ref, paid_fen=order.total_fen, cause="asked",
                                source="ops", reason="test", status=RefundStatus.SUCCESS, amount_fen=fen)
        row.refund_no, row.settled_at = refund_no, utcnow()
        uow.commit()


def _kinds(flow, run_id):
    with flow.ctx.reader() as uow:
        return Counter(uow.session.execute(select(PaymentDifference.kind)
                                           .where(PaymentDifference.run_id == run_id)).scalars())


@pytest.fixture
def day():
    return recon.platform_today()


def test_each_kind_of_mismatch_is_found_counted_and_the_missed_payment_repaired_once(flow, day):
    sim = flow.sandbox.wechat_pay
    matched = _place(flow, "matched")
    flow.pay(matched)
    missed = _place(flow, "missed")                    # paid at the platform, its notification lost
    sim.take_payment(missed, 1200, transaction_id="4200MISSED")
    late = _place(flow, "late")                        # cancelled, then paid: the money is owed back
    with flow.ctx.uow() as uow:
        orders.cancel(uow, orders.get(uow, late, lock=True), "buyer", "changed mind")
        uow.commit()
    sim.take_payment(late, 1200, transaction_id="4200LATE")
    differs = _place(flow, "differs")
    sim.knobs.bill.amounts[flow.pay(differs)] = 1100
    absent = _place(flow, "absent")
    sim.knobs.bill.omit_payments.add(flow.pay(absent))
    sim.knobs.bill.unknown_payments.append(("O-NOBODY", 990))
    sim.knobs.bill.extra_refunds.append(("O-ELSEWHERE", "RF-GHOST", 300))
    _settled_refund(flow, matched, "RF-HUB-ONLY", 200)
    _settled_refund(flow, differs, "RF-DIFFERS", 500)
    sim.knobs.bill.extra_refunds.append((differs, "RF-DIFFERS", 400))
    before = METRICS.payment_reconciliation_differences.labels("wechat_pay", "paid_unknown")._value.get()

    [first] = recon.reconcile(flow.ctx, day, trigger="cli")

    assert first.status == "ok" and first.repaired == 2
    assert _kinds(flow, first.run_id) == {
        "payment_missed": 2, "paid_unknown": 1, "amount_differs": 1, "not_in_bill": 1,
        "refund_only_in_bill": 1, "refund_only_in_hub": 1, "refund_amount_differs": 1}
    assert first.differences == 8
    assert METRICS.payment_reconciliation_differences.labels("wechat_pay", "paid_unknown")._value.get() == before + 1
    assert flow.order(missed).status == "allocated" and flow.order(missed).payment_ref == "4200MISSED"
    with flow.ctx.reader() as uow:
        owed = list(uow.session.execute(select(RefundRow).where(RefundRow.order_id == late)).scalars())
    assert [(r.payment_ref, r.cause, r.amount_fen) for r in owed] == [("4200LATE", "paid_late", 1200)]
    assert len(flow.events("order.refund_due", order_id=late)) == 1

    [second] = recon.reconcile(flow.ctx, day, trigger="cli")       # the same day again: nothing repaired twice

    assert second.repaired == 0 and second.differences == 6
    assert "payment_missed" not in _kinds(flow, second.run_id)
    assert len(flow.events("order.refund_due", order_id=late)) == 1
    with flow.ctx.reader() as uow:
        paid = [t for t in orders.get(uow, missed).transitions if t.to_status == "paid"]
    assert len(paid) == 1
    detail = recon.run_detail(flow.ctx, first.run_id)
    assert [line["repaired"] for line in detail["lines"]][-2:] == [True, True]   # the operator's lines first


def test_a_bill_whose_hash_does_not_match_is_kept_as_an_error_and_nothing_is_repaired(flow, day):
    sim = flow.sandbox.wechat_pay
    missed = _place(flow, "missed")
    sim.take_payment(missed, 1200)
    sim.knobs.bill.wrong_hash = True

    [run] = recon.reconcile(flow.ctx, day)

    assert run.status == "error" and "SHA1" in (run.error or "")
    assert run.differences == 0 and run.repaired == 0
    assert flow.order(missed).status == "pending_payment"
    with flow.ctx.reader() as uow:
        kept = uow.session.get(PaymentReconciliationRun, run.run_id)
        assert kept.status == "error" and kept.bill_payments == 0
        assert uow.session.execute(select(PaymentDifference)).first() is None

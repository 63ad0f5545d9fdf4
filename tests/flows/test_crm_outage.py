"""The CRM down for 30 s of wall-clock time in the middle of paying, cancelling and refunding orders with coupons
and points: the CRM consumers (as the erp_sync worker runs them) and the scheduler's retries-due timer keep
going; when the CRM answers again, its ledger shows every coupon and points step exactly once — nothing lost
(no dead letter: the outage is waited out), nothing twice. One test, about 40 s: on PostgreSQL when configured,
else SQLite."""
from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import func, select

from hub import handlers
from hub.consumers import Outcome, handle, retry_due
from hub.domain.discounts import FEN_PER_EARNED_POINT, step_share
from hub.domain.model import Fulfillment, FulfillmentType, OrderLine
from hub.flows import members
from hub.services import money_owed, orders
from hub.services import tracking as fulfilment
from hub.storage.tables import DeadLetter, OutboxMessage, RetryDue
from tests.conftest import _BACKENDS, make_ctx
from tests.flows.conftest import BUYER, make_flow
from tests.support import T0

LINES = (OrderLine("TEA-001", 2, 12800), OrderLine("CUP-002", 1, 4500))      # 30100 fen
OUTAGE_S = 30
CRM_CONSUMERS = (handlers.CRM_REDEEM, handlers.CRM_GIVE_BACK, handlers.CRM_REFUND_POINTS, handlers.CRM_RELEASE_HOLDS,
                 handlers.CRM_POINTS)


@pytest.fixture
def one_flow(sandbox, tmp_path):
    ctx = make_ctx(_BACKENDS[-1], tmp_path)
    yield make_flow(ctx, sandbox)
    ctx.engine.dispose()


class Consumers:
    """The CRM's consumers on every new outbox event, and the scheduler's timer on the retries due."""

    def __init__(self, flow) -> None:
        self.flow, self.seen, self.outcomes = flow, 0, list[Outcome]()

    def run(self) -> None:
        with self.flow.ctx.reader() as uow:
            rows = [(r.id, r.event_type, r.payload) for r in uow.session.execute(
                select(OutboxMessage).where(OutboxMessage.id > self.seen).order_by(OutboxMessage.id)).scalars()]
        for row_id, event_type, envelope in rows:
            for consumer in CRM_CONSUMERS:
                if consumer.event.TYPE == event_type:
                    outcome = handle(self.flow.ctx, consumer, envelope)
                    self.outcomes += [outcome] if outcome else []
            self.seen = row_id
        self.outcomes += retry_due(self.flow.ctx, handlers.BY_NAME)

    def waiting(self) -> int:
        with self.flow.ctx.reader() as uow:
            return uow.session.execute(select(func.count()).select_from(RetryDue)).scalar_one()


def place(flow, key: str, code: str) -> str:
    cmd = orders.PlaceOrder("miniprogram", key, LINES, BUYER, Fulfillment(FulfillmentType.PICKUP, "S001"),
                            coupon_code=code, points=2000)
    cmd, _ = members.hold(flow.ctx, cmd)
    with flow.ctx.uow() as uow:
        order, _ = orders.place(uow, flow.ctx.config, cmd, now=T0)
        uow.commit()
        return order.id


def test_the_crm_down_for_30_s_delays_every_member_step_and_loses_or_doubles_none(one_flow):
    flow, crm = one_flow, one_flow.sandbox.crm
    m = crm.enrol(BUYER.id, 100000)
    for code in ("CPN-A", "CPN-B", "CPN-C", "CPN-D"):
        crm.issue_coupon(m.member_id, code, 1000)
    a, b, c, d = (place(flow, f"out-{x}", f"CPN-{x}") for x in "ABCD")
    consumers = Consumers(flow)
    # before the outage: C paid, D paid and completed (its points earned)
    for order_id in (c, d):
        flow.pay(order_id)
    flow.move(d, "picking", "picked", "ready_for_pickup", "collected")
    with flow.ctx.uow() as uow:
        fulfilment.complete(uow, orders.get(uow, d, lock=True), "test", "handed over")
        uow.commit()
    consumers.run()
    total = flow.order(d).total_fen                                               # 27100
    earned = total // FEN_PER_EARNED_POINT
    assert m.points == 100000 - 4 * 2000 + earned

    requests.post(crm.base_url + "/_sim/faults", json={"down_for_s": OUTAGE_S}, timeout=5).raise_for_status()
    back_at = time.monotonic() + OUTAGE_S
    flow.pay(a)                                                                   # A paid
    with flow.ctx.uow() as uow:                                                   # B cancelled unpaid, C paid
        for order_id in (b, c):
            orders.cancel(uow, orders.get(uow, order_id, lock=True), "miniprogram", "changed my mind")
        order = orders.get(uow, d, lock=True)                                     # D refunded by half
        money_owed.owe(uow, order, payment_ref=order.payment_ref, paid_fen=total, cause="asked", source="test",
                       reason="one cup broken", amount_fen=total // 2)
        uow.commit()
    for order_id in (c, d):                         # the money back at WeChat Pay: the points follow it
        flow.deliver(handlers.ASK_FOR_REFUND, "order.refund_due", order_id=order_id)
    assert flow.platform_notifies() == [200, 200]
    consumers.run()
    assert consumers.waiting() == 5                 # A, B, C (twice: given back, refunded) and D: waiting on the CRM
    assert crm.wallet.coupons["CPN-A"].status == "locked"                      # nothing done while it was down
    while time.monotonic() < back_at + 60 and (time.monotonic() < back_at or consumers.waiting()):
        time.sleep(1)                                                             # the scheduler's timer, ticking
        consumers.run()
    assert consumers.waiting() == 0, "the retries due never got through"

    with flow.ctx.reader() as uow:
        assert uow.session.execute(select(DeadLetter)).scalars().all() == []
    assert {o.status for o in consumers.outcomes} >= {"deferred", "applied"}
    assert "parked" not in {o.status for o in consumers.outcomes}
    ledger: dict[str, list[str]] = {}
    for item, verb in crm.wallet.ledger:
        ledger.setdefault(item, []).append(verb)
    holds = {h.order_no: h.hold_id for h in crm.wallet.holds.values()}
    key = {x: members.order_key("miniprogram", f"out-{x}") for x in "ABCD"}
    assert ledger == {
        "CPN-A": ["lock", "use"], holds[key["A"]]: ["hold", "use"],             # paid
        "CPN-B": ["lock", "unlock"], holds[key["B"]]: ["hold", "release"],      # cancelled unpaid
        "CPN-C": ["lock", "use", "return"], holds[key["C"]]: ["hold", "use"],   # cancelled paid: points refunded
        "CPN-D": ["lock", "use"], holds[key["D"]]: ["hold", "use"]}             # completed, refunded by half
    back_d, taken_d = step_share(0, total // 2, total, 2000), step_share(0, total // 2, total, earned)
    assert sorted(e["points"] for e in crm.point_entries) == sorted([earned, 2000, back_d, -taken_d])
    assert m.points == 100000 - 4 * 2000 + 2000 + 2000 + earned + back_d - taken_d

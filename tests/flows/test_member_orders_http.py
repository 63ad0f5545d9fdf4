"""Coupons and points at order, through the real WSGI app against the CRM simulator: refusals answered before
anything is reserved, and a request that failed half-way at the CRM retried with its Idempotency-Key (the
CRM's fault endpoint fails the chosen call) — every step once, what a refused or abandoned attempt took given
back exactly once."""
from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.test import Client

from hub import handlers
from hub.api.app import build_api
from hub.storage.tables import DeadLetter, Reservation
from tests.flows.conftest import BUYER

LINES = [{"sku": "TEA-001", "qty": 2}, {"sku": "CUP-002", "qty": 1}]        # 30100 fen


def body(coupon: str | None = "CPN-100", points: int = 2000) -> dict[str, Any]:
    b: dict[str, Any] = {"lines": LINES, "buyer": {"id": BUYER.id, "name": BUYER.name, "phone": BUYER.phone},
                         "fulfillment": {"type": "pickup", "store_id": "S001"}}
    if coupon:
        b["coupon_code"] = coupon
    if points:
        b["points"] = points
    return b


def post(flow, b: dict[str, Any], key: str):
    headers = {"Authorization": f"Bearer {flow.ctx.config.channel('miniprogram').key}", "Idempotency-Key": key}
    return Client(build_api(flow.ctx)).post("/api/v1/orders", json=b, headers=headers)


def crm_faults(flow, **faults: Any) -> None:
    """The CRM simulator's own fault endpoint (as a tester drives a running sandbox)."""
    requests.post(flow.sandbox.crm.base_url + "/_sim/faults", json=faults, timeout=5).raise_for_status()


def enrol(flow, points: int = 5000):
    m = flow.sandbox.crm.enrol(BUYER.id, points)
    flow.sandbox.crm.issue_coupon(m.member_id, "CPN-100", 1000)
    return m


def reserved(flow) -> int:
    with flow.ctx.reader() as uow:
        return uow.session.execute(select(func.count()).select_from(Reservation)).scalar_one()


def dead_letters(flow) -> list[str]:
    with flow.ctx.reader() as uow:
        return [d.error for d in uow.session.execute(select(DeadLetter)).scalars()]


def coupon(flow, code: str = "CPN-100") -> str:
    return flow.sandbox.crm.wallet.coupons[code].status


def release_holds(flow) -> None:
    if flow.events("member.holds_release_due"):
        for _ in range(2):                                                  # redelivered too
            flow.deliver(handlers.CRM_RELEASE_HOLDS, "member.holds_release_due")


# -- refusals ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("b", "error"), [
    (body(coupon="CPN-OTHER", points=0), "coupon_not_owned"),
    (body(coupon=None, points=20000), "points_insufficient"),
    (body(coupon=None, points=40000), "more than the lines"),
    (body(coupon="CPN-BIG", points=0), "more than the lines"),
], ids=["another-buyers-coupon", "points-beyond-balance", "points-beyond-lines", "coupon-beyond-lines"])
def test_bad_member_input_is_422_and_nothing_is_reserved_or_held(flow, b, error):
    m = enrol(flow)
    other = flow.sandbox.crm.enrol("someone-else")
    flow.sandbox.crm.issue_coupon(other.member_id, "CPN-OTHER", 500)
    flow.sandbox.crm.issue_coupon(m.member_id, "CPN-BIG", 40000)
    r = post(flow, b, "bad-1")
    assert r.status_code == 422, r.text
    assert error in r.json["message"]
    assert reserved(flow) == 0
    assert {c: coupon(flow, c) for c in ("CPN-100", "CPN-OTHER", "CPN-BIG")} == dict.fromkeys(
        ("CPN-100", "CPN-OTHER", "CPN-BIG"), "available")
    assert m.points == 5000 and all(h.status == "released" for h in flow.sandbox.crm.wallet.holds.values())


def test_a_coupon_the_crm_refuses_is_409_with_its_reason_before_any_stock_is_reserved(flow):
    m = enrol(flow)
    flow.sandbox.crm.wallet.coupons["CPN-100"].status = "expired"
    for _ in range(2):                                                       # the same request again: the same
        r = post(flow, body(), "refused-1")
        assert r.status_code == 409, r.text
        assert r.json["error"] == "member_refused" and "coupon_expired" in r.json["message"]
    assert reserved(flow) == 0 and m.points == 5000 and not flow.sandbox.crm.wallet.holds


# -- a CRM failure between the coupon's lock and the points' hold, then the same request again -------------

def fail_the_points_hold(flow, m) -> None:
    # every attempt the connector makes at the hold answers 503: the request fails after the coupon's lock
    crm_faults(flow, fail_next=5, only_paths=[f"/v1/members/{m.member_id}/points/holds"], error_status=503)


@pytest.mark.parametrize("give_back_first", [False, True], ids=["retried-before-give-back",
                                                               "retried-after-give-back"])
def test_a_retry_after_a_crm_failure_mid_order_holds_afresh_and_spends_once(flow, give_back_first):
    m = enrol(flow)
    fail_the_points_hold(flow, m)
    first = post(flow, body(), "mid-1")
    assert first.status_code == 502, first.text
    assert reserved(flow) == 0
    if give_back_first:                       # the abandoned attempt's give-back runs before the client retries
        release_holds(flow)
        assert coupon(flow) == "available" and m.points == 5000
    again = post(flow, body(), "mid-1")
    assert again.status_code == 201, again.text
    order_id = again.json["order_id"]
    release_holds(flow)                       # whatever the first attempt still had to give back, now
    assert coupon(flow) == "locked" and m.points == 3000                   # held for the order, and only once
    flow.pay(order_id)
    for _ in range(2):
        flow.deliver(handlers.CRM_REDEEM, "order.status_changed", order_id=order_id, to="paid")
    assert coupon(flow) == "used" and m.points == 3000
    assert sorted(h.status for h in flow.sandbox.crm.wallet.holds.values()) in (["used"], ["released", "used"])
    assert dead_letters(flow) == []


def test_an_attempt_abandoned_after_a_crm_failure_gives_back_exactly_what_it_took(flow):
    m = enrol(flow)
    fail_the_points_hold(flow, m)
    assert post(flow, body(), "gone-1").status_code == 502
    assert coupon(flow) == "locked"                     # the CRM was not asked to unlock while it was failing
    release_holds(flow)
    assert coupon(flow) == "available" and m.points == 5000
    assert dead_letters(flow) == []
    # the coupon is the buyer's again: another order may use it
    r = post(flow, body(points=0), "next-1")
    assert r.status_code == 201, r.text and coupon(flow) == "locked"


def test_a_retry_that_finds_its_order_placed_holds_nothing_more(flow):
    m = enrol(flow)
    first = post(flow, body(), "twice-1")
    again = post(flow, body(), "twice-1")
    assert (first.status_code, again.status_code) == (201, 200) and first.json["order_id"] == again.json["order_id"]
    assert coupon(flow) == "locked" and m.points == 3000 and len(flow.sandbox.crm.wallet.holds) == 1
    assert not flow.events("member.holds_release_due")


def test_a_late_give_back_of_a_retried_order_names_the_attempt_it_adopted_after_its_holds_rows_are_gone(flow):
    """The order keeps the CRM order_no of the attempt it adopted (`orders.crm_order_no`): housekeeping removing
    the request's member_holds row does not make a late replay of crm_give_back name the bare key — under which
    the CRM holds nothing, so the coupon would stay locked for an order that was cancelled."""
    from datetime import timedelta

    from hub.services import housekeeping, orders
    from hub.storage.tables import MemberHold, utcnow

    m = enrol(flow)
    fail_the_points_hold(flow, m)
    assert post(flow, body(), "late-1").status_code == 502
    release_holds(flow)                                        # the first attempt given back
    again = post(flow, body(), "late-1")
    assert again.status_code == 201, again.text
    order_id = again.json["order_id"]
    adopted = flow.sandbox.crm.wallet.coupons["CPN-100"].order_no
    assert adopted.endswith(".1") and flow.order(order_id).crm_order_no == adopted
    later = utcnow() + timedelta(days=flow.ctx.config.hub.member_holds_keep_days + 1)
    with flow.ctx.uow() as uow:
        orders.cancel(uow, orders.get(uow, order_id, lock=True), "miniprogram", "changed my mind")
        uow.commit()
    assert housekeeping.remove_old_member_holds(flow.ctx, now=later) == 1
    with flow.ctx.reader() as uow:
        assert uow.session.query(MemberHold).count() == 0
    ledger = list(flow.sandbox.crm.wallet.ledger)
    for _ in range(2):                                          # late, and replayed
        flow.deliver(handlers.CRM_GIVE_BACK, "order.status_changed", order_id=order_id, to="cancelled")
    assert coupon(flow) == "available" and m.points == 5000
    assert flow.sandbox.crm.wallet.ledger[len(ledger):] == [("CPN-100", "unlock"), (ledger[-1][0], "release")]

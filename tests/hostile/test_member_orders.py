"""Coupons and points in `POST /orders` as a hostile client sends them: numbers past any balance or column, a
10 kB coupon code, and the same Idempotency-Key sent at once with and without the coupon. Real concurrent
requests on PostgreSQL against the CRM simulator: one order per key, and the coupon locked only for an order
that carries it — an attempt that lost gives back what it held."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import MemoryBinder
from connectors.registry import build_connector
from hub.config import SystemConfig
from hub.storage.tables import OrderRow
from sandbox.credentials import sandbox_env
from sandbox.crm import CrmSimulator
from tests.api.conftest import BUYER, order_body
from tests.hostile.conftest import Live, at_once
from tests.hostile.test_pay_cancel_race import reserved, stock


@pytest.fixture
def crm(live: Live) -> Iterator[CrmSimulator]:
    sim = CrmSimulator.from_env(sandbox_env()).start()
    system = SystemConfig(**{**live.ctx.config.systems["crm"].model_dump(), "base_url": sim.base_url})
    connector = build_connector("crm", system, MemoryBinder())
    live.deps.connectors["crm"] = connector
    live.ctx.connectors.overrides["crm"] = connector
    yield sim
    close = getattr(connector, "close", None)
    if close:
        close()
    sim.stop()


def body(**extra: Any) -> dict[str, Any]:
    return {**order_body(qty=2), **extra}


def placed(live: Live) -> list[OrderRow]:
    with live.ctx.reader() as uow:
        return list(uow.session.execute(select(OrderRow)).scalars())


def post(live: Live, key: str, **extra: Any) -> Any:
    return live.post("/api/v1/orders", body(**extra), headers={"Idempotency-Key": key})


def test_one_key_sent_at_once_with_and_without_the_coupon_is_one_order_and_the_coupon_given_back(
        live: Live, crm: CrmSimulator) -> None:
    stock(live)
    member = crm.enrol(BUYER["id"], 5000)
    for i in range(4):
        code, key = f"CPN-{i}", f"k-{i}"
        crm.issue_coupon(member.member_id, code, 1000)
        answers = at_once(lambda code=code, key=key: post(live, key, coupon_code=code),
                          lambda key=key: post(live, key),
                          lambda code=code, key=key: post(live, key, coupon_code=code, points=100),
                          lambda code=code, key=key: post(live, key, coupon_code=code))
        won = [r for r in answers if r.status_code in (200, 201)]
        assert len({r.json()["order_id"] for r in won}) == 1, [r.text for r in answers]
        assert all(r.status_code in (200, 201, 409, 422) for r in answers), [r.text for r in answers]
        [order] = [o for o in placed(live) if o.id == won[0].json()["order_id"]]
        coupon = crm.wallet.coupons[code]
        if order.discounts:                     # the coupon's request won: locked for that order's attempt
            assert coupon.status == "locked"
        else:                                   # the plain one won: what the others held went back
            assert coupon.status == "available", coupon
    assert len(placed(live)) == 4 and reserved(live) == 4 * 2


def test_one_key_with_its_coupon_sent_at_once_is_one_order_holding_the_coupon_once(live: Live,
                                                                                  crm: CrmSimulator) -> None:
    stock(live)
    member = crm.enrol(BUYER["id"], 5000)
    crm.issue_coupon(member.member_id, "CPN-1", 1000)
    answers = at_once(*[lambda: post(live, "k-same", coupon_code="CPN-1", points=200) for _ in range(5)])
    assert all(r.status_code in (200, 201, 409) for r in answers), [r.text for r in answers]
    assert len({r.json()["order_id"] for r in answers if r.status_code != 409}) <= 1
    # Each attempt supersedes the one before (a crashed attempt must not hold the coupon forever), so a burst
    # may leave no winner, every one 409 `member_refused` ("send it again"): the client's retry places it.
    again = post(live, "k-same", coupon_code="CPN-1", points=200)
    assert again.status_code in (200, 201), again.text
    [order] = placed(live)
    assert order.id == again.json()["order_id"] and sum(d["amount_fen"] for d in order.discounts) == 1000 + 200
    assert crm.wallet.coupons["CPN-1"].status == "locked" and reserved(live) == 2


@pytest.mark.parametrize("extra, field", [
    ({"points": 2**63}, "points"), ({"points": -1}, "points"), ({"points": 0}, "points"), ({"points": "100"}, "points"),
    ({"points": 1e3}, "points"), ({"coupon_code": "C" * 10240}, "coupon_code"), ({"coupon_code": ""}, "coupon_code"),
    ({"coupon_code": "ＣＰＮ-1"}, "coupon_code"), ({"coupon_code": "CPN-1\n"}, "coupon_code"),
    ({"coupon_code": 5}, "coupon_code"),
])
def test_odd_coupons_and_points_are_422_before_the_crm_is_asked(live: Live, crm: CrmSimulator,
                                                                extra: dict[str, Any], field: str) -> None:
    stock(live)
    r = post(live, "k-odd", **extra)
    assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert placed(live) == [] and crm.wallet.ledger == []

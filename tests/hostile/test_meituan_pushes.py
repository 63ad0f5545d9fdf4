"""The instant-retail platform's signed pushes, sent as a hostile (or confused) platform would: the same refund
pushed many times at once, a refund id reused for another order, more units than a line has, a line not on the
order, odd numbers in a validly signed body, stale timestamps. Real concurrent requests on PostgreSQL."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.base import MemoryBinder
from connectors.registry import build_connector
from hub.config import SystemConfig
from hub.services import inventory, orders
from hub.storage.tables import ChannelRefundRow, OrderRow, StockMovement
from sandbox.credentials import sandbox_env
from sandbox.meituan import MeituanSimulator, seed_binder, sign
from tests.hostile.conftest import Live, at_once
from tests.hostile.test_pay_cancel_race import stock
from tests.support import CATALOG


@pytest.fixture
def mt(live: Live) -> Iterator[MeituanSimulator]:
    sim = MeituanSimulator.from_env(sandbox_env()).start()
    system = SystemConfig(**{**live.ctx.config.systems["meituan"].model_dump(), "base_url": sim.base_url})
    connector = build_connector("meituan", system, seed_binder(MemoryBinder(), [s.code for s in CATALOG]))
    live.deps.connectors["meituan"] = connector
    live.ctx.connectors.overrides["meituan"] = connector
    yield sim
    connector.close()
    sim.stop()


def url(live: Live) -> str:
    return live.deps.connectors["meituan"].push_url  # type: ignore[attr-defined]


def post(live: Live, params: dict[str, str]) -> Any:
    return live.post("/callbacks/meituan", key=None, data=params)


def taken(live: Live, mt: MeituanSimulator, external_id: str, qty: int = 3) -> str:
    mt.seed_order(external_id, [("TEA-001", qty, 1200)], "S001", status=2, pick_type=1)
    r = post(live, mt.push_params(url(live), external_id))
    assert r.status_code == 200, r.text
    with live.ctx.reader() as uow:
        order = orders.find_by_idempotency(uow, "meituan", f"meituan:{external_id}")
        assert order is not None
        return order.id


def resigned(live: Live, mt: MeituanSimulator, params: dict[str, str], **changes: str) -> dict[str, str]:
    """The push with its content changed and signed again with the platform's secret: its word, however odd."""
    out = {**{k: v for k, v in params.items() if k != "sig"}, **changes}
    out["sig"] = sign(url(live), out, mt.app_secret)
    return out


def food(mt: MeituanSimulator, *lines: tuple[str, Any]) -> str:
    return json.dumps([{"app_food_code": mt.sku_id(s), "sku_id": mt.sku_id(s), "count": n} for s, n in lines])


def reserved(live: Live) -> int:
    with live.ctx.reader() as uow:
        return inventory.stock_at(uow.session, live.ctx.config, "TEA-001", "S001").reserved


def qty(live: Live, order_id: str) -> int:
    with live.ctx.reader() as uow:
        return orders.get(uow, order_id).lines[0].qty


def releases(live: Live) -> int:
    with live.ctx.reader() as uow:
        return uow.session.execute(select(func.count()).select_from(StockMovement)
                                   .where(StockMovement.kind == "release")).scalar_one()


def rows(live: Live) -> list[tuple[str, str, bool]]:
    with live.ctx.reader() as uow:
        return [(r.refund_id, r.order_id, r.agreed) for r in uow.session.execute(select(ChannelRefundRow)).scalars()]


def test_the_same_refund_pushed_at_once_is_decided_once_and_every_push_answered_ok(live: Live,
                                                                                  mt: MeituanSimulator) -> None:
    """Each push read "no decision yet" before the order's lock, then inserted its own: a key conflict, 409."""
    stock(live)
    order_id = taken(live, mt, "7001")
    params = mt.refund_params(url(live), "7001", "R-1", [("TEA-001", 1)])
    answers = at_once(*[lambda: post(live, params) for _ in range(6)])
    assert [(r.status_code, r.json()) for r in answers] == [(200, {"data": "ok"})] * 6
    assert qty(live, order_id) == 2 and reserved(live) == 2 and releases(live) == 1      # the unit back once
    assert rows(live) == [("R-1", order_id, True)] and mt.refunds["R-1"]["status"] == "agreed"


def test_a_refund_id_reused_for_another_order_is_refused_and_changes_nothing(live: Live,
                                                                            mt: MeituanSimulator) -> None:
    """It used to be answered ok with the first order's decision, as if the second order's refund were agreed."""
    stock(live)
    first, second = taken(live, mt, "7001"), taken(live, mt, "7002")
    assert post(live, mt.refund_params(url(live), "7001", "R-1", [("TEA-001", 1)])).status_code == 200
    reused = resigned(live, mt, mt.refund_params(url(live), "7001", "R-1", [("TEA-001", 1)]), order_id="7002")
    for _ in range(2):
        r = post(live, reused)
        assert r.status_code == 422 and r.json()["error"] == "refund_id_reused", r.text
    assert qty(live, first) == 2 and qty(live, second) == 3 and reserved(live) == 5
    assert rows(live) == [("R-1", first, True)]


@pytest.mark.parametrize("lines, why", [
    ([("TEA-001", 4)], "TEA-001: 4 asked, 3 left to refund"),
    ([("CUP-002", 1)], "CUP-002 is not a line of the order"),
    ([("TEA-001", 1), ("TEA-001", 1)], "TEA-001 is named twice"),
    ([("TEA-001", 0)], "TEA-001: 0 asked, 3 left to refund"),
    ([("TEA-001", -1)], "TEA-001: -1 asked, 3 left to refund"),
])
def test_a_refund_the_order_cannot_take_is_rejected_with_the_reason(live: Live, mt: MeituanSimulator,
                                                                    lines: list[tuple[str, int]], why: str) -> None:
    stock(live)
    order_id = taken(live, mt, "7001")
    r = post(live, resigned(live, mt, mt.refund_params(url(live), "7001", "R-1", [("TEA-001", 1)]),
                            food=food(mt, *lines)))
    assert r.status_code == 200, r.text
    assert mt.refunds["R-1"]["status"] == "rejected" and mt.refunds["R-1"]["reason"] == why
    assert qty(live, order_id) == 3 and reserved(live) == 3 and releases(live) == 0


@pytest.mark.parametrize("changes", [
    {"food": "[" + json.dumps({"sku_id": "mt-tea-001", "count": "1e3"}) + "]"},
    {"food": "[" + json.dumps({"sku_id": "mt-tea-001", "count": 10**18}) + "]"},
    {"food": "[" + json.dumps({"sku_id": "mt-tea-001", "count": 1.5}) + "]"},
    {"food": "[" + json.dumps({"sku_id": "mt-tea-001", "count": True}) + "]"},
    {"food": json.dumps([{"sku_id": "not-listed", "count": 1}])},
    {"food": "[]"}, {"food": "{}"}, {"food": "not json"}, {"food": "[1]"},
    {"refund_id": ""}, {"refund_id": "R" * 65}, {"refund_id": "退" * 5000},
], ids=lambda c: f"{next(iter(c))}={str(next(iter(c.values())))[:20]}")
def test_a_validly_signed_odd_refund_is_a_4xx_and_changes_nothing(live: Live, mt: MeituanSimulator,
                                                                   changes: dict[str, str]) -> None:
    """The platform's signature over odd content: a refund id past its column was a 500."""
    stock(live)
    order_id = taken(live, mt, "7001")
    r = post(live, resigned(live, mt, mt.refund_params(url(live), "7001", "R-1", [("TEA-001", 1)]), **changes))
    assert r.status_code == 422 and r.json()["data"] == "ng", r.text
    assert qty(live, order_id) == 3 and reserved(live) == 3 and rows(live) == []


@pytest.mark.parametrize("timestamp", [-3600, 3600, "1e3", 10**30, ""])
def test_a_stale_or_future_or_odd_timestamp_is_401(live: Live, mt: MeituanSimulator, timestamp: Any) -> None:
    stock(live)
    order_id = taken(live, mt, "7001")
    stamp = str(int(time.time()) + timestamp) if isinstance(timestamp, int) and timestamp < 10**9 else str(timestamp)
    r = post(live, resigned(live, mt, mt.refund_params(url(live), "7001", "R-1", [("TEA-001", 1)]), timestamp=stamp))
    assert r.status_code == 401, r.text
    assert qty(live, order_id) == 3 and rows(live) == []


def placed(live: Live) -> list[tuple[str | None, str]]:
    with live.ctx.reader() as uow:
        return [(o.external_id, o.status) for o in uow.session.execute(select(OrderRow)).scalars()]


def test_the_same_order_pushed_at_once_is_one_order_and_every_push_answered_ok(live: Live,
                                                                               mt: MeituanSimulator) -> None:
    """All but the first were 409 (the unique idempotency key refused their insert): the platform pushes again."""
    stock(live)
    mt.seed_order("8001", [("TEA-001", 2, 1200)], "S001", status=2, pick_type=0)
    params = mt.push_params(url(live), "8001")
    answers = at_once(*[lambda: post(live, params) for _ in range(6)])
    assert [(r.status_code, r.json()) for r in answers] == [(200, {"data": "ok"})] * 6
    assert placed(live) == [("8001", "allocated")] and reserved(live) == 2


def test_an_order_with_a_sku_outside_the_channels_allocation_is_cancelled_back(live: Live,
                                                                              mt: MeituanSimulator) -> None:
    """config.yaml does not list POT-003 for Meituan: the platform is asked to cancel, no order is kept."""
    stock(live)
    mt.seed_order("8002", [("POT-003", 1, 1200)], "S001", status=2)
    for _ in range(2):
        r = post(live, mt.push_params(url(live), "8002"))
        assert r.status_code == 200, r.text
    assert placed(live) == [] and "8002" in mt.cancels


@pytest.mark.parametrize("field, value", [("app_poi_code", "NOT-BOUND"), ("detail", "not json"),
                                          ("detail", json.dumps([{"sku_id": "not-listed", "quantity": 1,
                                                                  "price": 1}]))])
def test_an_order_whose_store_or_lines_cannot_be_mapped_is_422_and_takes_nothing(
        live: Live, mt: MeituanSimulator, field: str, value: str) -> None:
    stock(live)
    mt.seed_order("8004", [("TEA-001", 1, 1200)], "S001", status=2)
    mt.orders["8004"][field] = value
    r = post(live, mt.push_params(url(live), "8004"))
    assert r.status_code == 422 and r.json()["data"] == "ng", r.text
    assert placed(live) == [] and reserved(live) == 0


@pytest.mark.parametrize("extra, status", [
    ({"logistics_status": "20"}, 422),           # the store's courier carries it: refused for good, not re-pushed
    ({"logistics_status": "999"}, 422), ({"logistics_status": "-1"}, 422), ({"logistics_status": "abc"}, 422),
    ({"logistics_status": "20", "time": str(10**12)}, 422), ({"logistics_status": "40", "time": "-5"}, 422),
])
def test_a_logistics_push_for_an_order_the_store_courier_carries_changes_nothing(
        live: Live, mt: MeituanSimulator, extra: dict[str, str], status: int) -> None:
    stock(live)
    mt.seed_order("8003", [("TEA-001", 1, 1200)], "S001", status=2, logistics_code="0000")
    assert post(live, mt.push_params(url(live), "8003")).status_code == 200
    push = {"time": str(int(time.time())), "dispatcher_name": "张三", "dispatcher_mobile": "13700000000", **extra}
    r = post(live, mt.push_params(url(live), "8003", "logistics", **push))
    assert r.status_code == status and r.json()["data"] == "ng", r.text
    if extra == {"logistics_status": "20"}:
        assert r.json()["error"] == "not_platform_rider", r.text
    assert placed(live) == [("8003", "allocated")]


def test_refunds_of_one_order_at_once_never_take_more_units_than_it_has(live: Live, mt: MeituanSimulator) -> None:
    """Three part refunds (1 + 2 + 1 of 3 units) and a whole refund, each under its own id, pushed at once:
    serialised on the order's row, what is agreed fits what the order had, and the stock follows."""
    stock(live)
    for n in range(3):
        ext = f"74{n:02d}"
        order_id = taken(live, mt, ext)
        asks: list[tuple[str, list[tuple[str, int]] | None]] = [
            (f"R-{ext}-a", [("TEA-001", 1)]), (f"R-{ext}-b", [("TEA-001", 2)]), (f"R-{ext}-c", [("TEA-001", 1)])]
        if n == 2:
            asks.append((f"R-{ext}-all", None))
        replies = at_once(*[lambda rid=rid, lines=lines, ext=ext:
                            post(live, mt.refund_params(url(live), ext, rid, lines)) for rid, lines in asks])
        assert [r.status_code for r in replies] == [200] * len(asks), [r.text for r in replies]
        with live.ctx.reader() as uow:
            decided = {r.refund_id: r.agreed for r in uow.session.execute(
                select(ChannelRefundRow).where(ChannelRefundRow.order_id == order_id)).scalars()}
            order = orders.get(uow, order_id)
            status, qty_left, qty_refunded = order.status, order.lines[0].qty, order.lines[0].qty_refunded
        units = sum(n for rid, lines in asks if decided[rid] and lines for _, n in lines)
        assert len(decided) == len(asks) and units <= 3
        if status in ("cancelled", "refunded"):
            continue
        assert qty_left == 3 - units and qty_refunded == units
    with live.ctx.reader() as uow:
        held = sum(o.lines[0].qty for o in uow.session.execute(select(OrderRow)).scalars()
                   if o.status not in ("cancelled", "refunded"))
    assert reserved(live) == held


@pytest.mark.parametrize("order_id", ["9999", "x" * 5000])
def test_a_push_for_an_order_the_platform_does_not_know_is_422(live: Live, mt: MeituanSimulator,
                                                               order_id: str) -> None:
    """The platform answers 808 (no such order) to the detail query: was a 502, as if it had not answered."""
    stock(live)
    r = post(live, mt.push_params(url(live), order_id))
    assert r.status_code == 422 and r.json()["error"] == "channel_refused", r.text
    assert placed(live) == [] and reserved(live) == 0

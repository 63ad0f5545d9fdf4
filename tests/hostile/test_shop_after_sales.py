"""The WeChat shop's after-sales pushes (售后) as the shop (or someone holding its push token) sends them: the
same request pushed many times at once, two requests on one order at once whose sum is more than was paid, an
amount beyond what is left, another order's request. Real concurrent requests on PostgreSQL: each request
decided once, and never more agreed than the payment has left."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import MemoryBinder
from connectors.registry import build_connector
from hub.config import SystemConfig
from hub.services import money_owed, orders
from hub.storage.tables import OutboxMessage
from sandbox.credentials import sandbox_env
from sandbox.wechat_shop import WeChatShopSimulator, seed_binder
from tests.api.test_wechat_shop_completeness import FAST
from tests.hostile.conftest import Live, at_once
from tests.hostile.test_pay_cancel_race import stock
from tests.support import CATALOG


@pytest.fixture
def shop(live: Live) -> Iterator[WeChatShopSimulator]:
    sim = WeChatShopSimulator.from_env(sandbox_env()).start()
    system = SystemConfig(**{**live.ctx.config.systems["wechat_shop"].model_dump(), "base_url": sim.base_url})
    connector = build_connector("wechat_shop", system, seed_binder(MemoryBinder(), [s.code for s in CATALOG]), FAST)
    live.deps.connectors["wechat_shop"] = connector
    live.ctx.connectors.overrides["wechat_shop"] = connector
    yield sim
    connector.close()
    sim.stop()


def push(live: Live, sim: WeChatShopSimulator, body: bytes) -> Any:
    return live.post("/callbacks/wechat_shop", key=None, data=body, params=sim.signed_query(),
                     headers={"Content-Type": "application/json"})


def take(live: Live, sim: WeChatShopSimulator, shop_id: str, qty: int = 2) -> str:
    sim.seed_order(shop_id, [("TEA-001", qty, 1200)], status=20, fulfillment="pickup", store_id="S001")
    r = push(live, sim, sim.push_body("channels_ec_order_pay", shop_id))
    assert r.status_code == 200, r.text
    with live.ctx.reader() as uow:
        order = orders.find_by_idempotency(uow, "wechat_shop", f"wechat_shop:{shop_id}")
        assert order is not None
        return order.id


def refunds_of(live: Live, order_id: str) -> list[tuple[str, int, str]]:
    with live.ctx.reader() as uow:
        return sorted((r.refund_no, r.amount_fen, str(r.status)) for r in money_owed.of_order(uow, order_id))


def answers(live: Live) -> list[tuple[str, bool]]:
    with live.ctx.reader() as uow:
        return sorted((p["data"]["after_sale_id"], p["data"]["accept"]) for p in uow.session.execute(
            select(OutboxMessage.payload).where(OutboxMessage.event_type == "channel.after_sale_answer_due"))
            .scalars())


def test_the_same_after_sale_pushed_at_once_is_decided_once(live: Live, shop: WeChatShopSimulator) -> None:
    stock(live)
    order_id = take(live, shop, "3705300000000000101")
    shop.seed_after_sale("9200001", "3705300000000000101", 1200)
    body = shop.after_sale_body("9200001")
    replies = at_once(*[lambda: push(live, shop, body) for _ in range(6)])
    assert [r.status_code for r in replies] == [200] * 6, [r.text for r in replies]
    assert refunds_of(live, order_id) == [("AS-wechat_shop-9200001", 1200, "requested")]
    assert answers(live) == [("9200001", True)]


def test_two_after_sales_of_one_order_at_once_never_agree_more_than_was_paid(live: Live,
                                                                            shop: WeChatShopSimulator) -> None:
    """Each read what was left before the other wrote its refund: both agreed, 3000 fen of a 2400 fen payment."""
    stock(live)
    for n in range(3):
        shop_id = f"37053000000000002{n:02d}"
        order_id = take(live, shop, shop_id)
        first, second = f"93{n:02d}001", f"93{n:02d}002"
        shop.seed_after_sale(first, shop_id, 1500)
        shop.seed_after_sale(second, shop_id, 1500)
        replies = at_once(lambda a=first: push(live, shop, shop.after_sale_body(a)),
                          lambda b=second: push(live, shop, shop.after_sale_body(b)))
        assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
        decided = refunds_of(live, order_id)
        assert sorted(status for _, _, status in decided) == ["failed", "requested"], decided
    assert sorted(accept for _, accept in answers(live)) == [False] * 3 + [True] * 3


@pytest.mark.parametrize("amount", [2401, 10**12, 0])
def test_an_after_sale_beyond_what_is_left_is_rejected(live: Live, shop: WeChatShopSimulator, amount: int) -> None:
    stock(live)
    order_id = take(live, shop, "3705300000000000301")
    shop.seed_after_sale("9400001", "3705300000000000301", amount)
    r = push(live, shop, shop.after_sale_body("9400001"))
    assert r.status_code in (200, 422), r.text
    assert answers(live) in ([("9400001", False)], [])
    assert all(status == "failed" for _, _, status in refunds_of(live, order_id))


def test_another_orders_after_sale_is_422_and_decides_nothing(live: Live, shop: WeChatShopSimulator) -> None:
    stock(live)
    mine = take(live, shop, "3705300000000000401")
    take(live, shop, "3705300000000000402")
    shop.seed_after_sale("9500001", "3705300000000000402", 1200)
    body = json.loads(shop.after_sale_body("9500001"))
    body["finder_shop_aftersale_status_update"]["order_id"] = "3705300000000000401"
    replies = at_once(*[lambda: push(live, shop, json.dumps(body).encode()) for _ in range(3)])
    assert [r.status_code for r in replies] == [422] * 3
    assert answers(live) == [] and refunds_of(live, mine) == []


@pytest.mark.parametrize("field, value, status", [
    ("after_sale_order_id", "9" * 5000, 422),          # the shop knows no such request: was a 502
    ("after_sale_order_id", 123, 422),
    ("order_id", "x" * 5000, 422),                      # nor such an order: was a 502
    ("status", "\u0000", 400),
])
def test_a_signed_push_naming_what_the_shop_does_not_know_is_a_4xx(live: Live, shop: WeChatShopSimulator,
                                                                   field: str, value: Any, status: int) -> None:
    stock(live)
    order_id = take(live, shop, "3705300000000000901")
    shop.seed_after_sale("9900001", "3705300000000000901", 1200)
    body = json.loads(shop.after_sale_body("9900001"))
    body["finder_shop_aftersale_status_update"][field] = value
    r = push(live, shop, json.dumps(body).encode())
    assert r.status_code == status, r.text
    assert answers(live) == [] and refunds_of(live, order_id) == []


@pytest.mark.parametrize("amount", [-5, 2**40, "12.5"])
def test_an_after_sale_with_an_odd_amount_is_422_and_decides_nothing(live: Live, shop: WeChatShopSimulator,
                                                                     amount: Any) -> None:
    stock(live)
    order_id = take(live, shop, "3705300000000000902")
    shop.seed_after_sale("9900002", "3705300000000000902", 1200)
    shop.after_sales["9900002"]["refund_info"]["amount"] = amount
    r = push(live, shop, shop.after_sale_body("9900002"))
    assert r.status_code == 422, r.text
    assert answers(live) == [] and refunds_of(live, order_id) == []

"""Issue 26 on PostgreSQL over real HTTP: a plain order rush (no flash sale) on a few units, every attempt its own
key and buyer, with the sold-out cache in front (in-process and Redis): the ledger never sells a unit too many,
and the units a cancel gives back are sold again once channel sync has read the figure."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from hub.domain.model import StockCount
from hub.events import StockChanged
from hub.flows import channel_stock
from hub.services import inventory
from tests.api.conftest import order_body
from tests.hostile.conftest import Live, at_once
from tests.redis_support import redis_sold_out
from tests.support import at


class _NoShop:
    def update_store_stock(self, sku: str, store_id: str, available: int) -> None:
        return None


@pytest.fixture(params=["memory", "redis"])
def cached(request, live: Live, monkeypatch) -> Iterator[Live]:
    monkeypatch.setattr(live.ctx.connectors, "channel", lambda name: _NoShop())
    if request.param == "memory":
        yield live
    else:
        with redis_sold_out() as cache:
            live.ctx.sold_out = cache
            yield live


def attempt(live: Live, key: str | None = None):
    key = key or uuid.uuid4().hex
    body = order_body(qty=1)
    body["buyer"] = {**body["buyer"], "id": f"b-{key[:8]}"}
    return live.post("/api/v1/orders", body, headers={"Idempotency-Key": key})


def level(live: Live) -> inventory.LocationStock:
    with live.ctx.uow() as uow:
        return inventory.stock_at(uow.session, live.ctx.config, "TEA-001", "S001")


def test_a_rush_on_a_few_units_sells_each_once(cached):
    with cached.ctx.uow() as uow:               # 6 on hand, the mini-program holds back 1: 5 to sell
        inventory.apply_count(uow, StockCount("test", "seed", "TEA-001", "S001", 6, at(-60)))
        uow.commit()
    first = at_once(*[lambda: attempt(cached)] * 24)
    second = at_once(*[lambda: attempt(cached)] * 24)          # the cache knows by now: refused without the ledger
    statuses = [r.status_code for r in first + second]
    assert statuses.count(201) == 5 and statuses.count(409) == 43, statuses
    stock = level(cached)
    assert stock.reserved == 5 and stock.on_hand == 6

    admitted = next(r for r in first + second if r.status_code == 201)
    assert cached.post(f"/api/v1/orders/{admitted.json()['order_id']}/cancel", {"reason": "x"}).status_code == 200
    channel_stock.stock_to_shop_batch(cached.ctx, [StockChanged("TEA-001", "S001", "release")])
    again = at_once(*[lambda: attempt(cached)] * 12)
    assert sorted(r.status_code for r in again) == [201] + [409] * 11
    assert level(cached).reserved == 5

"""Issue 26: a pickup order for a store known to be sold out is answered 409 without the order database; the
cache forgets when stock comes back (channel sync's figures after a restock, a cancel); a retry of a placed
order is never refused from it. The in-process cache and the Redis one (`tests/redis_support.py`)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from hub.config import OpeningHours
from hub.domain import hours
from hub.domain.sold_out import MemorySoldOut
from hub.events import StockChanged
from hub.flows import channel_stock
from hub.storage.tables import OrderRow, Reservation, StockMovement
from tests.redis_support import redis_sold_out
from tests.support import at, statements_run

from .conftest import POS_KEYS, Api, order_body


@pytest.fixture(params=["memory", "redis"])
def cached(request, api: Api, monkeypatch) -> Iterator[Api]:
    """The API with either cache, and channel sync's pushes going nowhere (the test runs its batches itself)."""
    monkeypatch.setattr(api.ctx.connectors, "channel", lambda name: _NoShop())
    # Believed for a minute: a slow machine must not let an entry expire between two requests of a test.
    hub = api.ctx.config.hub.model_copy(update={"sold_out_ttl_ms": 60_000})
    api.ctx.config = api.ctx.config.model_copy(update={"hub": hub})
    if request.param == "memory":
        yield api
    else:
        with redis_sold_out() as cache:
            api.ctx.sold_out = cache
            yield api


class _NoShop:
    def update_store_stock(self, sku: str, store_id: str, available: int) -> None:
        return None


def attempt(api: Api, key: str, qty: int = 1):
    return api.post("/api/v1/orders", order_body(qty=qty), headers={"Idempotency-Key": key})


def sold_out_at_s001(api: Api) -> str:
    """S001 with 2 units the mini-program may sell (3 less its safety stock of 1), both ordered, and an attempt
    the ledger refused: the cache now knows. The placed order's id."""
    api.stock(3, locations=("S001",), skus=("TEA-001",))
    placed = attempt(api, "first", qty=2)
    assert placed.status_code == 201, placed.json
    refused = attempt(api, "second")
    assert refused.status_code == 409 and refused.json["error"] == "insufficient_stock"
    return placed.json["order_id"]


def channel_sync(api: Api, cause: str) -> None:
    """What the channel_sync service does with the stock.changed events of TEA-001 at S001."""
    channel_stock.stock_to_shop_batch(api.ctx, [StockChanged("TEA-001", "S001", cause)])


def test_a_sold_out_store_is_refused_from_the_cache_without_the_database(cached):
    sold_out_at_s001(cached)
    with statements_run(cached.ctx.engine) as statements:
        r = attempt(cached, "third")
    assert r.status_code == 409 and r.json["error"] == "insufficient_stock"
    assert r.json["short"] == [{"sku": "TEA-001", "location_id": "S001", "wanted": 1, "available": 0}]
    assert statements == []                              # the order database was not asked
    assert cached.level().reserved == 2


def refusals_counted(api: Api) -> dict[str, float]:
    return {labels["channel"]: value for labels, value in api.deps.metrics.samples("hub_sold_out_cache_refusals_total")}


def test_each_refusal_from_the_cache_is_counted_by_channel_and_the_ledgers_are_not(cached):
    sold_out_at_s001(cached)                                          # the ledger's refusal: not the cache's
    assert refusals_counted(cached) == {}
    assert attempt(cached, "third").status_code == 409
    assert attempt(cached, "fourth").status_code == 409
    assert refusals_counted(cached) == {"miniprogram": 2.0}


@pytest.mark.parametrize("how", ["closed"])     # a paused store is the database's: see below
def test_a_store_routing_refuses_gets_the_same_answer_from_the_cache_as_from_the_ledger(cached, how):
    sold_out_at_s001(cached)
    if how == "paused":
        r = cached.post("/api/v1/stores/S001/pause", {"paused": True, "reason": "busy"}, key=POS_KEYS["S001"])
        assert r.status_code == 200, r.json
    else:                                   # closed every day of the calendar's horizon
        # never open (config validation refuses such a calendar; routing still must answer for it)
        shut = OpeningHours.model_construct(weekly={day: [] for day in hours.WEEKDAYS})
        stores = [loc.model_copy(update={"opening_hours": shut}) if loc.id == "S001" else loc
                  for loc in cached.ctx.config.locations]
        cached.ctx.config = cached.ctx.config.model_copy(update={"locations": stores})
    from_cache = attempt(cached, "cached")
    hub = cached.ctx.config.hub.model_copy(update={"sold_out_ttl_ms": 0})           # the database path
    cached.ctx.config = cached.ctx.config.model_copy(update={"hub": hub})
    from_ledger = attempt(cached, "ledger")
    assert from_ledger.status_code == 409 and from_ledger.json["error"] == "no_route", from_ledger.json
    assert (from_cache.status_code, from_cache.json) == (from_ledger.status_code, from_ledger.json)


def test_a_paused_stores_sold_out_sku_is_still_refused_from_the_cache_without_the_database(cached):
    """Whether a store is paused is in the database, which the cache's answer never asks: a 409 either way,
    `insufficient_stock` from the cache where the ledger's path says `no_route` (README, the sold-out cache)."""
    sold_out_at_s001(cached)
    r = cached.post("/api/v1/stores/S001/pause", {"paused": True, "reason": "busy"}, key=POS_KEYS["S001"])
    assert r.status_code == 200, r.json
    with statements_run(cached.ctx.engine) as statements:
        r = attempt(cached, "paused")
    assert r.status_code == 409 and r.json["error"] == "insufficient_stock" and statements == []


def test_another_store_and_a_delivery_still_reach_the_ledger(cached):
    sold_out_at_s001(cached)
    cached.stock(5, locations=("S002",), skus=("TEA-001",))
    assert cached.post("/api/v1/orders", order_body(store="S002"), headers={"Idempotency-Key": "s2"}).status_code == 201
    with statements_run(cached.ctx.engine) as statements:
        r = cached.post("/api/v1/orders", order_body(kind="delivery"), headers={"Idempotency-Key": "d1"})
    assert r.status_code in (201, 409) and statements          # routing decides, from the ledger


def test_a_retry_of_a_placed_order_is_answered_with_its_order(cached):
    order_id = sold_out_at_s001(cached)
    again = attempt(cached, "first", qty=2)
    assert again.status_code == 200 and again.json["order_id"] == order_id


def test_back_in_stock_after_a_restock(cached):
    sold_out_at_s001(cached)
    channel_sync(cached, "pos:count")                    # still sold out: the cache keeps refusing
    assert attempt(cached, "third").status_code == 409
    r = cached.put("/api/v1/stores/S001/stock", {"counted_at": at(-1).isoformat(),
                                                  "lines": [{"sku": "TEA-001", "on_hand": 10}]}, key=POS_KEYS["S001"])
    assert r.status_code == 200, r.json
    channel_sync(cached, "pos:count")
    assert attempt(cached, "fourth").status_code == 201


def test_back_in_stock_after_a_cancel(cached):
    order_id = sold_out_at_s001(cached)
    assert attempt(cached, "third").status_code == 409
    r = cached.post(f"/api/v1/orders/{order_id}/cancel", {"reason": "changed my mind"})
    assert r.status_code == 200, r.json
    channel_sync(cached, "release")
    assert attempt(cached, "fourth").status_code == 201
    assert attempt(cached, "fifth").status_code == 201
    assert attempt(cached, "sixth").status_code == 409      # the two released units, no more
    assert cached.level().reserved == 2


def test_the_cache_turned_off_leaves_every_attempt_to_the_ledger(api):
    hub = api.ctx.config.hub.model_copy(update={"sold_out_ttl_ms": 0})
    api.ctx.config = api.ctx.config.model_copy(update={"hub": hub})
    sold_out_at_s001(api)
    with statements_run(api.ctx.engine) as statements:
        assert attempt(api, "third").status_code == 409
    assert statements


def test_a_plain_pickup_order_is_one_write_on_postgresql(cached):
    """Issue 26: a plain order's units queue on its store's one stock row, locked from its UPDATE to the COMMIT,
    each commit waiting a turn of a busy gateway. An attempt the cache sees for the first time is not looked up
    by its key; the SKU is read once (pricing and the order's checks), the stores' pause rows in one read; the
    order, its line and history, the stock.changed event, the reservation and its ledger row go in with the
    stock row's conditional UPDATE, last: one statement on PostgreSQL. SQLite writes them one by one."""
    cached.stock(5, locations=("S001",), skus=("TEA-001",))
    assert attempt(cached, "k0").status_code == 201
    with statements_run(cached.ctx.engine) as statements:
        r = attempt(cached, "k1")
    assert r.status_code == 201, r.json
    reads = [s for s in statements if s.startswith("select")]
    writes = [s for s in statements if s not in reads]
    take = "update stock_levels set reserved=(stock_levels.reserved +"
    assert len(reads) == 3 and not [s for s in reads if "from orders" in s]     # no look-up by key
    assert len([s for s in reads if "from skus" in s]) == 1
    if cached.ctx.engine.dialect.name == "postgresql":
        assert len(writes) == 1 and writes[0].startswith("with") and writes[0].rfind(take) > writes[0].rfind(
            "insert into stock_movements") > writes[0].rfind("insert into reservations") > 0
        assert "insert into outbox" in writes[0] and "insert into order_transitions" in writes[0]
    else:
        assert writes[0] == "begin immediate" and len(writes) == 8 and writes[-1].startswith(take)
    assert cached.level().reserved == 2
    with cached.ctx.uow() as uow:
        order = uow.session.get(OrderRow, r.json["order_id"])
        assert order is not None and [t.to_status for t in order.transitions] == ["pending_payment"]
        assert [(x.sku, x.qty, x.status) for x in uow.session.execute(
            select(Reservation).where(Reservation.order_id == order.id)).scalars()] == [("TEA-001", 1, "open")]
        assert uow.session.execute(select(StockMovement).where(
            StockMovement.external_id == f"order:{order.id}:reserve")).scalar_one().qty == 1


def test_a_duplicate_key_the_cache_did_not_know_is_answered_with_its_order(cached):
    """The cache forgot the key (a restart, another gateway's cache): the attempt is written without a
    look-up, the key's unique constraint refuses it, and the look-up then answers with the placed order."""
    cached.stock(5, locations=("S001",), skus=("TEA-001",))
    placed = attempt(cached, "k1")
    assert placed.status_code == 201
    cached.ctx.sold_out = MemorySoldOut()
    again = attempt(cached, "k1")
    assert again.status_code == 200 and again.json["order_id"] == placed.json["order_id"]
    cached.ctx.sold_out = MemorySoldOut()
    other = cached.post("/api/v1/orders", order_body(qty=2), headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422, other.json
    assert cached.level().reserved == 1

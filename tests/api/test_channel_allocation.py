"""Channel allocation (issue 23): each channel's share, cap or `listed: false` of a store's stock per SKU, and
its own safety stock — what it is shown and what its orders may take, counted in the reservation's own
transaction. The rush: two channels' orders on one SKU at one store at once (PostgreSQL, real threads, the
mini-program's through POST /api/v1/orders, the platform's as signed pushes to /callbacks/meituan read back
from its simulator) — never oversold across channels, neither past its share."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from connectors.base import MemoryBinder
from connectors.registry import build_connector
from hub.api.app import build_api, build_deps
from hub.config import AllocationRule, ChannelAllocation, HubConfig, SystemConfig
from hub.domain.errors import InsufficientStock
from hub.domain.model import Buyer, Fulfillment, FulfillmentType, OrderLine, PlaceOrder
from hub.flows.channel_stock import figures_now
from hub.metrics import HubMetrics
from hub.services import inventory, orders
from hub.storage.tables import ChannelReserved, OrderRow, Reservation
from sandbox.credentials import sandbox_env
from sandbox.meituan import MeituanSimulator, seed_binder
from tests.api.conftest import CHANNEL_KEY, Api, Clock, order_body, sandbox_config
from tests.conftest import _BACKENDS, make_ctx
from tests.support import CATALOG, make_order_row

MEITUAN = ChannelAllocation(share=50, rules=[AllocationRule(sku="CUP-002", listed=False),
                                             AllocationRule(sku="TEA-001", store="S002", cap=3)])
MINIPROGRAM = ChannelAllocation(share=60)


def allocated(url: str) -> HubConfig:
    cfg = sandbox_config(url)
    shares = {"meituan": MEITUAN, "miniprogram": MINIPROGRAM}
    return cfg.model_copy(update={"channels": [ch.model_copy(update={"allocation": shares.get(ch.id)})
                                               for ch in cfg.channels]})


def _api(backend: str, tmp_path):
    ctx = make_ctx(backend, tmp_path, config=allocated)
    deps = build_deps(ctx, now=Clock(), metrics=HubMetrics(CollectorRegistry()))
    return Api(ctx, deps, build_api(ctx, deps), Clock())


@pytest.fixture(params=_BACKENDS)
def api(request, tmp_path):
    a = _api(request.param, tmp_path)
    yield a
    a.ctx.engine.dispose()


@pytest.fixture
def pg_api(tmp_path):
    if "postgresql" not in _BACKENDS:
        pytest.skip("PostgreSQL not configured: set HUB_TEST_DATABASE_URL")
    a = _api("postgresql", tmp_path)
    yield a
    a.ctx.engine.dispose()


def with_meituan(api: Api) -> MeituanSimulator:
    sim = MeituanSimulator.from_env(sandbox_env()).start()
    system = SystemConfig(**{**api.ctx.config.systems["meituan"].model_dump(), "base_url": sim.base_url})
    connector = build_connector("meituan", system, seed_binder(MemoryBinder(), [s.code for s in CATALOG]))
    api.deps.connectors["meituan"] = connector
    return sim


def place(api: Api, channel: str, key: str, qty: int, sku: str = "TEA-001", store: str = "S001") -> str:
    cmd = PlaceOrder(channel, key, (OrderLine(sku, qty, 1000),), Buyer("b1", "Han", "13900000000"),
                     Fulfillment(FulfillmentType.PICKUP, store_id=store))
    with api.ctx.uow() as uow:
        order, _ = orders.place(uow, api.ctx.config, cmd)
        uow.commit()
        return order.id


def shown(api: Api, channel: str, sku: str = "TEA-001", store: str = "S001") -> int:
    ch = api.ctx.config.channel(channel)
    assert ch is not None
    with api.ctx.uow() as uow:
        return figures_now(uow, api.ctx, ch.safety_stock, [(sku, store)], channel)[(sku, store)]


def held(api: Api, channel: str, sku: str = "TEA-001", store: str = "S001") -> int:
    with api.ctx.uow() as uow:
        return uow.session.execute(select(ChannelReserved.reserved).filter_by(
            channel=channel, sku=sku, location_id=store)).scalar_one_or_none() or 0


def test_each_channel_is_shown_and_takes_its_share_and_no_more(api):
    api.stock(10)                                   # S001, S002: 10 of TEA-001 and CUP-002 each; safety 0
    # the platform: half of 10, less its safety stock of 1; the mini-program: 60 % of 10, less its 1
    assert (shown(api, "meituan"), shown(api, "miniprogram")) == (4, 5)
    assert shown(api, "meituan", "CUP-002") == 0                      # not listed there
    assert shown(api, "meituan", store="S002") == 2                   # the rule for S002: at most 3, less 1
    place(api, "meituan", "mt-1", 3)
    with pytest.raises(InsufficientStock) as refused:                 # 2 more would pass its share
        place(api, "meituan", "mt-2", 2)
    assert refused.value.short[0]["available"] == 1
    with pytest.raises(InsufficientStock):
        place(api, "meituan", "mt-3", 1, sku="CUP-002")
    assert held(api, "meituan") == 3 and api.level().reserved == 3
    # the other channel's figure follows the sale: 60 % of 10 is still its, but only 7 are left less its 1
    assert (shown(api, "meituan"), shown(api, "miniprogram")) == (1, 5)
    mini = place(api, "miniprogram", "mp-1", 5)
    assert (shown(api, "meituan"), shown(api, "miniprogram")) == (1, 0)
    with api.ctx.uow() as uow:                                        # a cancel gives the share back
        orders.cancel(uow, orders.get(uow, mini), "test", "buyer changed their mind")
        uow.commit()
    assert held(api, "miniprogram") == 0 and shown(api, "miniprogram") == 5


def test_a_channel_without_an_allocation_sells_what_the_store_has(api):
    cfg = api.ctx.config
    api.ctx.config = cfg.model_copy(update={"channels": [c.model_copy(update={"allocation": None})
                                                         for c in cfg.channels]})
    api.stock(10)
    assert shown(api, "meituan") == 9
    place(api, "meituan", "mt-1", 9)
    assert held(api, "meituan") == 0                      # nothing counted: no share to count against


def test_the_share_given_back_when_the_goods_leave_or_are_short_picked(api):
    api.stock(10)
    oid = place(api, "meituan", "mt-1", 4)
    assert shown(api, "meituan") == 0
    with api.ctx.uow() as uow:
        inventory.short_pick(uow, oid, "TEA-001", 1, "not on the shelf")
        uow.commit()
    assert held(api, "meituan") == 3
    with api.ctx.uow() as uow:
        inventory.commit(uow, oid)
        uow.commit()
    # 9 - 3 on hand left the store: half of 6 less 1 is the platform's again
    assert held(api, "meituan") == 0 and api.level().on_hand == 6 and shown(api, "meituan") == 2


RUSH = 30           # attempts per channel, one unit each, on 20 units


def test_a_rush_from_two_channels_on_one_sku_holds_every_share(pg_api):
    api = pg_api
    api.stock(20, locations=("S001",), skus=("TEA-001",))
    sim = with_meituan(api)
    try:
        for i in range(RUSH):
            sim.seed_order(str(7000 + i), [("TEA-001", 1, 1200)], "S001", status=2, pick_type=1)
        push_url = api.deps.connectors["meituan"].push_url
        start = threading.Barrier(8)

        def platform(i: int) -> int:
            params = sim.push_params(push_url, str(7000 + i))
            return api.client.post("/callbacks/meituan", data=params).status_code

        def miniprogram(i: int) -> int:
            return api.client.post("/api/v1/orders", json=order_body("pickup", 1), headers={
                "Idempotency-Key": f"rush-{i}", "Authorization": f"Bearer {CHANNEL_KEY}"}).status_code

        def attempt(n: int) -> tuple[str, int]:
            if n < 8:
                start.wait()                                   # the first of each side go at once
            return ("meituan", platform(n // 2)) if n % 2 else ("miniprogram", miniprogram(n // 2))

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(attempt, range(2 * RUSH)))
    finally:
        sim.stop()
    # A platform order its store cannot fill is answered ok and cancelled back to the platform (sold out), so
    # the platform's taken are those it was not asked to cancel.
    taken = {"miniprogram": sum(1 for c, s in answers if c == "miniprogram" and s == 201),
             "meituan": RUSH - len(sim.cancels)}
    assert all(s in (200, 201, 409) for _, s in answers), answers
    assert all(s == 200 for c, s in answers if c == "meituan"), answers
    assert {c["reason_code"] for c in sim.cancels.values()} <= {"2009"}
    # 20 units, the store's safety 0: each channel at most its share less its safety stock of 1 (10 - 1 and
    # 12 - 1), together at most 19 (a channel's order leaves it 1 unit of its own safety stock); 30 tries
    # each, so both sides reach a limit and the store sells exactly 19
    assert taken["meituan"] <= 9 and taken["miniprogram"] <= 11, taken
    assert taken["meituan"] + taken["miniprogram"] == 19, taken
    with api.ctx.uow() as uow:
        per_channel = dict(uow.session.execute(
            select(OrderRow.channel, func.sum(Reservation.qty)).join(OrderRow, OrderRow.id == Reservation.order_id)
            .where(Reservation.status == "open").group_by(OrderRow.channel)).all())
    assert per_channel == taken                                        # the ledger agrees with the answers
    assert (held(api, "meituan"), held(api, "miniprogram")) == (taken["meituan"], taken["miniprogram"])
    assert api.level().reserved == 19 and api.level().available == 1


def test_the_ledger_itself_refuses_past_a_share_when_routing_read_too_early(pg_api):
    """The same rush straight at the reservation (as an order routed on a figure read a moment before would
    reach it): the channel's conditional UPDATE, not routing's read, keeps each channel within its share."""
    api = pg_api
    api.stock(20, locations=("S001",), skus=("TEA-001",))
    with api.ctx.uow() as uow:
        for i in range(2 * RUSH):
            make_order_row(uow, f"LEDGER{i:03d}")
        uow.commit()
    start = threading.Barrier(8)
    channels = ("meituan", "miniprogram")

    def attempt(i: int) -> tuple[str, bool]:
        channel = channels[i % 2]
        if i < 8:
            start.wait()
        with api.ctx.uow() as uow:
            try:
                inventory.reserve(uow, api.ctx.config, f"LEDGER{i:03d}", [("TEA-001", "S001", 1)],
                                  timedelta(minutes=15), 1, channel)
            except InsufficientStock:
                return channel, False
            uow.commit()
            return channel, True

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attempt, range(2 * RUSH)))
    taken = {ch: sum(1 for c, ok in answers if c == ch and ok) for ch in channels}
    assert taken["meituan"] <= 9 and taken["miniprogram"] <= 11 and sum(taken.values()) == 19, taken
    with api.ctx.uow() as uow:
        counted = dict(uow.session.execute(select(Reservation.channel, func.sum(Reservation.qty))
                                           .group_by(Reservation.channel)).all())
    assert counted == taken and (held(api, "meituan"), held(api, "miniprogram")) == (taken["meituan"],
                                                                                   taken["miniprogram"])


def test_the_stock_a_channel_reads_is_its_share(api):
    api.stock(10)                                                     # S001, S002, WH01: 10 each
    r = api.get("/api/v1/stock/TEA-001")
    assert r.status_code == 200
    by_loc = {x["location_id"]: x["available"] for x in r.json["locations"]}
    assert (by_loc["S001"], by_loc["S002"], by_loc["WH01"], by_loc["S003"]) == (5, 5, 5, 0)   # 60 % of 10, less 1
    assert r.json["available"] == sum(by_loc.values())
    near = api.get("/api/v1/stock/TEA-001?lat=31.2291&lng=121.4484")
    assert {x["location_id"]: x["available"] for x in near.json["locations"]}["S001"] == 5

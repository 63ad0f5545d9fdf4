"""No order lost at any channel: each channel's order pull (`hub/flows/order_pull.py`) against the WeChat shop's
and the Meituan platform's simulators. An order whose pushes all failed (nothing listening where the simulator
pushes, or its pushes dropped) is listed by the channel's order list and taken through the push's own use case —
once, however often it is pulled or pushed late; the cursor is kept in the database and survives a restart; the
orders the pushes missed are counted per channel (the metric and the console)."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from connectors.base import MemoryBinder, RetryPolicy
from connectors.registry import build_connector
from hub.bootstrap import build_context
from hub.config import SystemConfig
from hub.flows import order_pull
from hub.metrics import METRICS
from hub.ports import OrderPage
from hub.services import orders
from hub.storage.tables import ChannelOrderPull, OrderRow, Reservation
from sandbox.credentials import sandbox_env
from sandbox.meituan import MeituanSimulator
from sandbox.meituan import seed_binder as mt_binder
from sandbox.wechat_shop import WeChatShopSimulator, seed_binder
from tests.api.conftest import OPS_KEY
from tests.support import CATALOG

NOBODY = "http://127.0.0.1:9/callbacks/wechat_shop"     # the hub away: nothing listens where the shop pushes
FAST = RetryPolicy(attempts=2, initial=0.01, maximum=0.02, jitter=0)


def shop_connector(api, sim):
    system = SystemConfig(**{**api.ctx.config.systems["wechat_shop"].model_dump(), "base_url": sim.base_url})
    return build_connector("wechat_shop", system, seed_binder(MemoryBinder(), [s.code for s in CATALOG]), FAST)


@pytest.fixture
def shop(api):
    sim = WeChatShopSimulator.from_env(sandbox_env()).start()
    connector = shop_connector(api, sim)
    api.deps.connectors["wechat_shop"] = connector          # the push callback's
    api.ctx.connectors.overrides["wechat_shop"] = connector  # the pull's
    api.ctx.connectors.overrides["meituan"] = Silent()       # the other channel lists nothing here
    yield sim
    connector.close()
    sim.stop()


class Silent:
    """A channel with no orders changed (the tests of one channel leave the other out)."""
    name, pull_window_s = "meituan", 86400

    def changed_orders(self, since, until, stores, page=""):
        return OrderPage(())


def push(api, sim, event: str, order_id: str):
    return api.client.post("/callbacks/wechat_shop", data=sim.push_body(f"channels_ec_{event}", order_id),
                           query_string=sim.signed_query(), headers={"Content-Type": "application/json"})


def shop_orders_of(api, external_id: str, channel: str = "wechat_shop") -> list[SimpleNamespace]:
    with api.ctx.uow() as uow:
        return [SimpleNamespace(id=o.id, status=o.status, total_fen=o.total_fen, location_id=o.location_id)
                for o in uow.session.execute(select(OrderRow).where(OrderRow.channel == channel,
                                                                    OrderRow.external_id == external_id)).scalars()]


def reserved_for(api, order_id: str) -> int:
    with api.ctx.uow() as uow:
        return int(uow.session.execute(select(func.coalesce(func.sum(Reservation.qty), 0))
                                       .where(Reservation.order_id == order_id)).scalar_one())


def missed_metric(channel: str) -> float:
    return METRICS.channel_orders_missed.labels(channel)._value.get()


def result_of(results, channel: str) -> order_pull.PullResult:
    [found] = [r for r in results if r.channel == channel]
    return found


def test_an_order_whose_pushes_were_all_lost_is_taken_by_the_pull_exactly_once(api, shop):
    api.stock(10)
    shop.seed_order("3705200000000000001", [("TEA-001", 2, 1200)], status=20, fulfillment="pickup", store_id="S001")
    for event in ("order_new", "order_pay"):             # every push fails: the hub is away
        assert shop.push_event(NOBODY, event, "3705200000000000001") is None
    assert [code for _, _, code in shop.pushes] == [0, 0] and shop_orders_of(api, "3705200000000000001") == []
    before = missed_metric("wechat_shop")

    first = result_of(order_pull.pull_channel_orders(api.ctx), "wechat_shop")
    assert (first.listed, first.missed, first.refused) == (1, 1, 0)
    [order] = shop_orders_of(api, "3705200000000000001")
    assert (order.status, order.total_fen, order.location_id) == ("allocated", 2400, "S001")
    assert reserved_for(api, order.id) == 2
    assert missed_metric("wechat_shop") == before + 1

    again = result_of(order_pull.pull_channel_orders(api.ctx), "wechat_shop")     # listed again (the overlap)
    assert (again.listed, again.missed) == (1, 0)
    for event in ("order_new", "order_pay"):              # the shop's retries land at last
        r = push(api, shop, event, "3705200000000000001")
        assert r.status_code == 200 and r.get_data() == b"success"
    [same] = shop_orders_of(api, "3705200000000000001")
    assert same.id == order.id and same.status == "allocated" and reserved_for(api, order.id) == 2
    assert missed_metric("wechat_shop") == before + 1
    with api.ctx.uow() as uow:
        row = uow.session.get(ChannelOrderPull, "wechat_shop")
        assert (row.channel, row.missed, row.listed, row.last_error) == ("wechat_shop", 1, 2, None)


def test_an_order_pushed_first_is_not_counted_as_missed_when_pulled(api, shop):
    api.stock(10)
    shop.seed_order("3705200000000000002", [("TEA-001", 1, 1200)], status=20, fulfillment="pickup", store_id="S001")
    assert push(api, shop, "order_pay", "3705200000000000002").status_code == 200
    result = result_of(order_pull.pull_channel_orders(api.ctx), "wechat_shop")
    assert (result.listed, result.missed) == (1, 0)
    [order] = shop_orders_of(api, "3705200000000000002")
    assert reserved_for(api, order.id) == 1


def test_a_lost_payment_push_is_a_change_the_pull_takes(api, shop):
    api.stock(10)
    shop.seed_order("3705200000000000003", [("TEA-001", 1, 1200)], status=10, fulfillment="pickup", store_id="S001")
    assert push(api, shop, "order_new", "3705200000000000003").status_code == 200
    shop.set_status("3705200000000000003", 20)             # paid in the shop; that push is lost
    shop.drop_pushes = True
    assert shop.push_event(NOBODY, "order_pay", "3705200000000000003") is None
    assert shop_orders_of(api, "3705200000000000003")[0].status == "pending_payment"
    result = result_of(order_pull.pull_channel_orders(api.ctx), "wechat_shop")
    assert result.missed == 1 and shop_orders_of(api, "3705200000000000003")[0].status == "allocated"


def test_the_cursor_moves_only_once_the_orders_are_committed(api, shop):
    api.stock(10)
    shop.seed_order("3705200000000000004", [("TEA-001", 1, 1200)], status=20, fulfillment="pickup", store_id="S001")
    shop.faults.only_paths, shop.faults.fail_next = ("/channels/ec/order/get",), 99   # the order cannot be read
    shop.faults.error_status, shop.faults.error_body = 200, {"errcode": -1, "errmsg": "system busy"}
    results = order_pull.pull_channel_orders(api.ctx)
    assert [r.channel for r in results] == ["meituan"]                     # the shop's pull failed
    with api.ctx.uow() as uow:
        row = uow.session.get(ChannelOrderPull, "wechat_shop")
        cursor, error = row.cursor_at, row.last_error
    assert cursor < datetime.now(UTC) - timedelta(hours=23) and "system busy" in error    # not moved
    assert shop_orders_of(api, "3705200000000000004") == []
    shop.faults.fail_next = 0
    result = result_of(order_pull.pull_channel_orders(api.ctx), "wechat_shop")
    assert result.missed == 1 and len(shop_orders_of(api, "3705200000000000004")) == 1
    assert result.cursor_at > datetime.now(UTC) - timedelta(minutes=5)


def test_the_cursor_survives_a_restart(api, shop):
    now = datetime.now(UTC).replace(microsecond=0)
    order_pull.pull_channel_orders(api.ctx, now=now)
    with api.ctx.uow() as uow:
        assert uow.session.get(ChannelOrderPull, "wechat_shop").cursor_at == now
    # The hub restarts: a new context on the same database, its own connectors.
    restarted = build_context(api.ctx.config, str(api.ctx.engine.url.render_as_string(hide_password=False)),
                              upgrade=False, connectors=build_connector)
    try:
        connector = shop_connector(api, shop)
        restarted.connectors.overrides.update(wechat_shop=connector, meituan=Silent())
        shop.received.clear()
        order_pull.pull_channel_orders(restarted, now=now + timedelta(minutes=10))
        [ask] = [r.json() for r in shop.requests_to("/channels/ec/order/list/get")]
        overlap = api.ctx.config.hub.order_pull_overlap_s
        assert ask["update_time_range"] == {"start_time": int(now.timestamp()) - overlap,
                                            "end_time": int(now.timestamp()) + 600}
        connector.close()
    finally:
        restarted.engine.dispose()


def test_a_long_outage_is_caught_up_window_by_window(api, shop):
    """The shop lists at most 7 days per ask: two weeks away are asked in windows, the cursor saved after each."""
    api.stock(10)
    now = datetime.now(UTC).replace(microsecond=0)
    with api.ctx.uow() as uow:
        uow.session.add(ChannelOrderPull(system="wechat_shop", channel="wechat_shop",
                                         cursor_at=now - timedelta(days=15), listed=0, missed=0))
        uow.commit()
    shop.seed_order("3705200000000000005", [("TEA-001", 1, 1200)], status=20, fulfillment="pickup", store_id="S001",
                    at=int((now - timedelta(days=12)).timestamp()))
    result = result_of(order_pull.pull_channel_orders(api.ctx, now=now), "wechat_shop")
    asks = [r.json()["update_time_range"] for r in shop.requests_to("/channels/ec/order/list/get")]
    assert len(asks) == 3 and all(a["end_time"] - a["start_time"] <= 7 * 86400 for a in asks)
    assert result.missed == 1 and result.cursor_at == now


def test_the_console_shows_each_channels_pull(api, shop):
    api.stock(10)
    shop.seed_order("3705200000000000006", [("TEA-001", 1, 1200)], status=20, fulfillment="pickup", store_id="S001")
    order_pull.pull_channel_orders(api.ctx)
    pulls = {p["channel"]: p for p in api.get("/admin/api/reconciliation", key=OPS_KEY).json["orders"]}
    assert pulls["wechat_shop"]["missed"] == 1 and pulls["wechat_shop"]["system"] == "wechat_shop"
    assert pulls["wechat_shop"]["cursor_at"] and pulls["wechat_shop"]["last_pull_at"]
    assert pulls["meituan"]["missed"] == 0


# -- the instant-retail platform: its order query, store by store ----------------------------------------------

@pytest.fixture
def mt(api):
    sim = MeituanSimulator.from_env(sandbox_env()).start()
    system = SystemConfig(**{**api.ctx.config.systems["meituan"].model_dump(), "base_url": sim.base_url})
    connector = build_connector("meituan", system, mt_binder(MemoryBinder(), [s.code for s in CATALOG]), FAST)
    api.deps.connectors["meituan"] = connector
    api.ctx.connectors.overrides["meituan"] = connector
    api.ctx.connectors.overrides["wechat_shop"] = Silent()
    yield sim
    connector.close()
    sim.stop()


def test_a_platform_order_whose_pushes_were_dropped_is_taken_once(api, mt):
    api.stock(10)
    mt.drop_pushes = True
    mt.seed_order("6001", [("TEA-001", 2, 1200)], "S002", status=2, pick_type=1)
    mt.seed_order("6002", [("CUP-002", 1, 800)], "S001", status=2, pick_type=1)
    push_url = api.deps.connectors["meituan"].push_url
    assert mt.push(push_url, "6001") is None and mt.push(push_url, "6002") is None
    before = missed_metric("meituan")
    first = result_of(order_pull.pull_channel_orders(api.ctx), "meituan")
    assert (first.listed, first.missed) == (2, 2)
    again = result_of(order_pull.pull_channel_orders(api.ctx), "meituan")
    assert again.missed == 0
    mt.drop_pushes = False                                   # the platform's push lands late
    r = api.client.post("/callbacks/meituan", data=mt.push_params(push_url, "6001"))
    assert r.status_code == 200 and r.json == {"data": "ok"}
    [order] = shop_orders_of(api, "6001", "meituan")
    assert (order.status, order.location_id) == ("allocated", "S002") and reserved_for(api, order.id) == 2
    assert len(shop_orders_of(api, "6002", "meituan")) == 1
    assert missed_metric("meituan") == before + 2
    with api.ctx.uow() as uow:
        assert orders.find_by_idempotency(uow, "meituan", "meituan:6001").id == order.id


def test_the_platforms_list_is_asked_store_by_store_within_its_window(api, mt):
    mt.seed_order("6003", [("TEA-001", 1, 1200)], "S003", status=2, at=int(time.time()) - 3 * 86400)
    now = datetime.now(UTC).replace(microsecond=0)
    with api.ctx.uow() as uow:
        uow.session.add(ChannelOrderPull(system="meituan", channel="meituan", cursor_at=now - timedelta(days=4),
                                         listed=0, missed=0))
        uow.commit()
    api.stock(10, locations=("S003",))
    result = result_of(order_pull.pull_channel_orders(api.ctx, now=now), "meituan")
    asks = [r.form() for r in mt.requests_to("/api/v1/ecommerce/order/getOrderIdByPage")]
    assert {a["app_poi_code"] for a in asks} == {"t_4987001", "t_4987002", "t_4987003"}
    assert all(int(a["end_time"]) - int(a["start_time"]) <= 86400 for a in asks)
    assert result.listed == 1 and result.cursor_at == now


def test_the_scheduler_pulls_at_start_then_once_per_interval(api, shop):
    """A scheduler starting is often our own outage ending: its first tick pulls at once."""
    from workers.scheduler import SchedulerService

    api.stock(10)
    shop.seed_order("3705200000000000007", [("TEA-001", 1, 1200)], status=20, fulfillment="pickup", store_id="S001")
    service = SchedulerService()
    service.hub = api.ctx
    service.pull_channel_orders()
    assert len(shop_orders_of(api, "3705200000000000007")) == 1
    service.pull_channel_orders()                          # the next tick, well within the interval: not asked
    assert len(shop.requests_to("/channels/ec/order/list/get")) == 1


def test_an_order_the_hub_never_knew_that_already_shipped_is_not_placed(api, shop):
    """Served outside the hub (before it took the shop's orders): placing it would send the goods twice."""
    api.stock(10)
    shop.seed_order("3705200000000000008", [("TEA-001", 1, 1200)], status=30, fulfillment="pickup", store_id="S001")
    result = result_of(order_pull.pull_channel_orders(api.ctx), "wechat_shop")
    assert (result.listed, result.missed, result.refused) == (1, 0, 1)
    assert shop_orders_of(api, "3705200000000000008") == [] and api.level().reserved == 0
    assert result.cursor_at > datetime.now(UTC) - timedelta(minutes=5)          # passed, not waited on


def test_an_order_that_does_not_map_is_passed_and_the_others_taken(api, shop):
    """An unknown SKU (a push of it is answered 422) must not hold the cursor for ever."""
    api.stock(10)
    t = int(time.time())
    shop.seed_order("3705200000000000009", [("NOPE-999", 1, 1200)], status=20, fulfillment="pickup", store_id="S001",
                    at=t - 2)
    shop.seed_order("3705200000000000010", [("TEA-001", 1, 1200)], status=20, fulfillment="pickup", store_id="S001",
                    at=t - 1)
    result = result_of(order_pull.pull_channel_orders(api.ctx), "wechat_shop")
    assert (result.listed, result.missed, result.refused) == (2, 1, 1)
    assert shop_orders_of(api, "3705200000000000009") == [] and len(shop_orders_of(api, "3705200000000000010")) == 1
    assert result.cursor_at > datetime.now(UTC) - timedelta(minutes=5)

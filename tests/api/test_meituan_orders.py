"""The instant-retail platform's orders through the hub, against its simulator: pushed to
/callbacks/meituan (signed), taken once, accepted (order/confirm) and picked (preparationMealComplete)
through `channel_order_progress`, cancelled by the platform — and never refunded through WeChat Pay,
nor told to WeChat's shipping-info upload (the platform took the money)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from connectors.base import MemoryBinder
from connectors.registry import build_connector
from hub.config import SystemConfig
from hub.events import OrderRefundDue, OrderStatusChanged
from hub.flows import channel_orders, refunds, shipping_info
from hub.services import money_owed, orders, picking, store_capacity
from hub.storage.tables import OutboxMessage, utcnow
from sandbox.credentials import sandbox_env
from sandbox.meituan import MeituanSimulator, seed_binder
from tests.support import CATALOG


@pytest.fixture
def mt(api):
    sim = MeituanSimulator.from_env(sandbox_env()).start()
    system = SystemConfig(**{**api.ctx.config.systems["meituan"].model_dump(), "base_url": sim.base_url})
    connector = build_connector("meituan", system, seed_binder(MemoryBinder(), [s.code for s in CATALOG]))
    api.deps.connectors["meituan"] = connector          # the callback's
    api.ctx.connectors.overrides["meituan"] = connector  # the flows'
    yield sim
    connector.close()
    sim.stop()


def push(api, sim, order_id: str, push_type: str = "order"):
    params = sim.push_params(api.deps.connectors["meituan"].push_url, order_id, push_type)
    return api.client.post("/callbacks/meituan", data=params)


def changed(order, to: str) -> OrderStatusChanged:
    return OrderStatusChanged(order_id=order.id, from_status="paid", to_status=to,
                              fulfillment=order.fulfillment_type, location_id=order.location_id, source="test")


def the_order(api, external_id: str):
    with api.ctx.uow() as uow:
        row = orders.find_by_idempotency(uow, "meituan", f"meituan:{external_id}")
        return None if row is None else SimpleNamespace(**{k: getattr(row, k) for k in (
            "id", "status", "channel", "external_id", "total_fen", "payment_ref", "fulfillment_type", "location_id")})


def event_types(api) -> list[str]:
    with api.ctx.uow() as uow:
        return [m.event_type for m in uow.session.execute(select(OutboxMessage)).scalars()]


def test_a_platform_order_pushed_twice_is_taken_once_accepted_and_picked(api, mt):
    api.stock(10)
    mt.seed_order("5001", [("TEA-001", 2, 1200)], "S001", status=2, pick_type=1)
    for _ in range(2):                                            # the platform pushes again: once
        r = push(api, mt, "5001")
        assert r.status_code == 200 and r.json == {"data": "ok"}, r.get_data()
    order = the_order(api, "5001")
    assert (order.status, order.channel, order.external_id, order.total_fen) == ("allocated", "meituan", "5001", 2400)
    assert api.level().reserved == 2
    channel_orders.channel_order_progress(api.ctx, changed(order, "allocated"))
    assert mt.calls == [("confirm", "5001")] and mt.orders["5001"]["status"] == 4
    with api.ctx.uow() as uow:                    # the store picks it (issue 21): allocated -> picking -> picked
        picking.complete(uow, "S001", order.id, [], "Wang", utcnow())
        uow.commit()
    channel_orders.channel_order_progress(api.ctx, changed(order, "picked"))
    assert mt.calls == [("confirm", "5001"), ("picked", "5001")]
    assert the_order(api, "5001").status == "ready_for_pickup"      # a pickup: ready at the counter once picked


def test_a_bad_signature_is_401_and_takes_nothing(api, mt):
    api.stock(10)
    mt.seed_order("5002", [("TEA-001", 1, 1200)], "S001", status=2)
    params = {**mt.push_params(api.deps.connectors["meituan"].push_url, "5002"), "sig": "0" * 32}
    r = api.client.post("/callbacks/meituan", data=params)
    assert r.status_code == 401 and r.json["data"] == "ng"
    assert the_order(api, "5002") is None and api.level().reserved == 0


def test_the_platforms_order_is_never_refunded_through_wechat_pay(api, mt):
    api.stock(10)
    mt.seed_order("5003", [("TEA-001", 2, 1200)], "S001", status=2, pick_type=1)
    assert push(api, mt, "5003").status_code == 200
    order = the_order(api, "5003")
    assert api.ctx.connectors.payment_platform_for(order) is None
    shipping_info.shipping_info_upload(api.ctx, changed(order, "ready_for_pickup"))   # nothing to upload
    mt.set_status("5003", 9)                                                          # the platform cancels
    assert push(api, mt, "5003", "cancel").status_code == 200
    assert the_order(api, "5003").status == "cancelled" and api.level().reserved == 0
    assert "order.refund_due" not in event_types(api)                                 # the platform pays back
    with api.ctx.uow() as uow:                  # even a refund owed by mistake is not asked of WeChat Pay
        money_owed.owe(uow, orders.get(uow, order.id), payment_ref=order.payment_ref or "x", paid_fen=2400,
                       cause="test", source="hub", reason="test")
        uow.commit()
    [due] = [m for m in event_types(api) if m == "order.refund_due"]
    assert due
    with api.ctx.uow() as uow:
        payload = uow.session.execute(select(OutboxMessage.payload)
                                      .where(OutboxMessage.event_type == "order.refund_due")).scalar_one()
    # WeChat Pay's address has no server here: had it been asked, the call would have failed after its retries.
    refunds.ask_for_refund(api.ctx, OrderRefundDue.from_data(payload["data"]))
    with api.ctx.uow() as uow:
        [refund] = money_owed.of_order(uow, order.id)
        assert refund.status == "requested"                 # left alone: not ours to ask


def test_a_platform_order_goes_to_the_store_it_names_not_the_nearest(api, mt):
    """The buyer's address is by S001 (the nearest store, stocked), but the platform sold from S002: there."""
    api.stock(10)
    mt.seed_order("5010", [("TEA-001", 2, 1200)], "S002", status=2, pick_type=0)
    assert push(api, mt, "5010").status_code == 200
    order = the_order(api, "5010")
    assert (order.status, order.location_id) == ("allocated", "S002")
    assert api.level("S002").reserved == 2 and api.level("S001").reserved == 0
    assert mt.cancels == {}


@pytest.mark.parametrize("why, code", [("sold_out", "2009"), ("paused", "2008")])
def test_a_platform_order_its_store_cannot_fill_is_cancelled_back_with_the_reason(api, mt, why, code):
    """S002 is out of the tea (S001 holds plenty) or paused: nothing is reserved anywhere, no order is kept, and
    the platform is asked to cancel its order with the reason; its re-push changes nothing more."""
    api.stock(10, locations=("S001", "WH01"))
    if why == "paused":
        api.stock(10, locations=("S002",))
        with api.ctx.uow() as uow:
            store_capacity.pause(uow, api.ctx.config, "S002", True, None, "lunch rush", api.clock())
            uow.commit()
    mt.seed_order("5011", [("TEA-001", 2, 1200)], "S002", status=2, pick_type=0)
    for _ in range(2):
        r = push(api, mt, "5011")
        assert r.status_code == 200 and r.json == {"data": "ok"}, r.get_data()
    assert the_order(api, "5011") is None
    assert [api.level(loc).reserved for loc in ("S001", "S002", "WH01")] == [0, 0, 0]
    assert mt.cancels["5011"]["reason_code"] == code and "S002" in mt.cancels["5011"]["reason"]
    assert mt.orders["5011"]["status"] == 9                   # the platform cancelled it (and pays its buyer back)


def test_a_platform_order_at_a_store_the_hub_does_not_know_is_a_4xx(api, mt):
    api.stock(10)
    order = mt.seed_order("5012", [("TEA-001", 1, 1200)], "S001", status=2)
    order["app_poi_code"] = "t_unbound"                   # no binding: the hub cannot tell which store it is
    r = push(api, mt, "5012")
    assert r.status_code == 422 and r.json["data"] == "ng", r.get_data()
    assert the_order(api, "5012") is None and mt.cancels == {}

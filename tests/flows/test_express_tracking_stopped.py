"""Kuaidi100's `status: abort` (it stopped tracking a waybill) is shown to operations and the
hub falls back to polling that waybill (issue 25, "Also")."""
from __future__ import annotations

from werkzeug.test import Client

from hub import handlers
from hub.api.app import build_api
from hub.flows.express import poll_stopped_tracking
from hub.metrics import METRICS
from sandbox.credentials import STATIC

from .conftest import HANGZHOU
from .test_couriers import shipments


def stopped_count() -> float:
    return METRICS.express_tracking_stopped.labels("express")._value.get()


def test_an_aborted_tracking_is_counted_and_the_waybill_is_polled_until_delivered(flow):
    order_id = flow.place("express", [("SET-004", 1, 19900)], address=HANGZHOU)
    flow.pay(order_id)
    flow.deliver(handlers.EXPRESS_WAYBILL, "order.status_changed", order_id=order_id, to="allocated")
    express = flow.sandbox.express
    waybill = express.orders[order_id]
    assert poll_stopped_tracking(flow.ctx) == 0                  # pushed: nothing to poll

    before = stopped_count()
    r = Client(build_api(flow.ctx)).post("/callbacks/express", data=express.abort_tracking(waybill))
    assert r.status_code == 200, r.get_data(as_text=True)
    [shipment] = shipments(flow, order_id)
    assert shipment.tracking == "polling" and stopped_count() == before + 1

    assert express.advance(waybill, 3) == []                     # delivered: Kuaidi100 no longer pushes it
    assert poll_stopped_tracking(flow.ctx) >= 1                  # the hub asked instead
    [shipment] = shipments(flow, order_id)
    assert shipment.status == "delivered"
    assert flow.order(order_id).status == "completed"                 # delivered, so completed


def test_an_aborted_tracking_is_on_the_orders_timeline_for_operations_once(flow):
    """The abort is a shipment event: recorded on the order's history (the console's timeline, with the
    waybill and Kuaidi100's reason), once however often the push comes; the buyer's timeline leaves it out."""
    order_id = flow.place("express", [("SET-004", 1, 19900)], address=HANGZHOU)
    flow.pay(order_id)
    flow.deliver(handlers.EXPRESS_WAYBILL, "order.status_changed", order_id=order_id, to="allocated")
    express = flow.sandbox.express
    waybill = express.orders[order_id]
    api = Client(build_api(flow.ctx))
    stop = express.abort_tracking(waybill, "3天查询无记录")
    for _ in range(2):                                           # Kuaidi100 re-sends a push it thinks unanswered
        r = api.post("/callbacks/express", data=stop)
        assert r.status_code == 200, r.get_data(as_text=True)
    ops = {"Authorization": f"Bearer {flow.ctx.config.hub.ops_key}"}
    console = api.get(f"/admin/api/orders/{order_id}", headers=ops)
    assert console.status_code == 200, console.get_data(as_text=True)
    stopped = [s for s in console.json["timeline"] if s["status"] == "tracking_stopped"]
    assert len(stopped) == 1, console.json["timeline"]
    assert stopped[0]["source"] == "express"
    assert waybill in stopped[0]["detail"] and "3天查询无记录" in stopped[0]["detail"]
    assert "polls" in stopped[0]["detail"]
    assert flow.order(order_id).status == "shipped"             # history only: the order's state is unmoved
    channel = {"Authorization": f"Bearer {STATIC['HUB_CHANNEL_MINIPROGRAM_KEY']}"}
    buyer = api.get(f"/api/v1/orders/{order_id}", headers=channel)
    assert buyer.status_code == 200, buyer.get_data(as_text=True)
    assert "tracking_stopped" not in [s["status"] for s in buyer.json["timeline"]]

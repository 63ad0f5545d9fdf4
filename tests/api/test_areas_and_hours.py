"""Issue 22 over the API: a store's delivery areas (the matched area and its fee on the order, a minimum order's
refusal in its routing), its opening calendar (a pickup paid on a closure day promised from the next opening;
the no-show timer not counting the closure)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry

from hub.api.app import build_api, build_deps
from hub.config import LocationConfig
from hub.metrics import HubMetrics
from hub.services import housekeeping
from tests.conftest import _BACKENDS, make_ctx

from .conftest import ADDRESS, BUYER, POS_KEYS, Api, Clock, sandbox_config

SH = timezone(timedelta(hours=8))
# Around the buyer's address (31.2250, 121.4450), in GCJ-02 like config.yaml's coordinates.
AREA = {"name": "jingan", "min_order_fen": 30000, "delivery_fee_fen": 500,
        "points": [{"lat": 31.215, "lng": 121.435}, {"lat": 31.215, "lng": 121.455},
                   {"lat": 31.235, "lng": 121.455}, {"lat": 31.235, "lng": 121.435}]}
CLOSURE = "2026-11-26"                        # a Thursday; the clock starts on Wednesday 10:00
HOURS = {"periods": [{"open": "09:00", "close": "22:00"}], "closed": [CLOSURE]}


def configured(url: str):
    cfg = sandbox_config(url)
    locations = [LocationConfig.model_validate({**loc.model_dump(), "delivery_radius_km": 0,
                                                "delivery_areas": [AREA], "opening_hours": HOURS})
                 if loc.id == "S001" else loc for loc in cfg.locations]
    return cfg.model_copy(update={"locations": locations})


@pytest.fixture(params=_BACKENDS)
def api(request, tmp_path):
    ctx = make_ctx(request.param, tmp_path, config=configured)
    clock = Clock()
    deps = build_deps(ctx, now=clock, metrics=HubMetrics(CollectorRegistry()))
    yield Api(ctx, deps, build_api(ctx, deps), clock)
    ctx.engine.dispose()


def delivery(api: Api, qty: int, key: str) -> dict:
    body = {"lines": [{"sku": "TEA-001", "qty": qty}], "buyer": BUYER,
            "fulfillment": {"type": "delivery", "address": ADDRESS}}
    r = api.post("/api/v1/orders", body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.json
    got = api.get(f"/api/v1/orders/{r.json['order_id']}")
    assert got.status_code == 200
    return got.json


def test_an_order_in_the_area_carries_the_areas_fee(api):
    api.stock(10)
    order = delivery(api, 3, "k-area")                                   # 3 x 12800 = 38400 fen
    assert (order["fulfillment"]["store_id"], order["fulfillment"]["delivery_area"],
            order["fulfillment"]["delivery_fee_fen"]) == ("S001", "jingan", 500)
    assert (order["routing"]["area"], order["routing"]["delivery_fee_fen"]) == ("jingan", 500)
    [s001] = [c for c in order["routing"]["candidates"] if c["location_id"] == "S001"]
    assert (s001["accepted"], s001["area"], s001["delivery_fee_fen"]) == (True, "jingan", 500)
    assert order["total_fen"] == 38400                  # the hub does not charge the fee: shown, not added


def test_below_the_areas_minimum_the_refusal_is_recorded_and_another_store_delivers(api):
    api.stock(10)
    order = delivery(api, 2, "k-small")                                  # 25600 fen < 30000
    assert order["fulfillment"]["store_id"] == "S002" and "delivery_fee_fen" not in order["fulfillment"]
    why = {c["location_id"]: c["reason"] for c in order["routing"]["candidates"]}
    assert why["S001"] == "below the minimum order of delivery area jingan (30000 fen; the basket is 25600 fen)"


def test_nearby_shows_the_area_the_buyer_is_in(api):
    api.stock(10)
    r = api.get("/api/v1/stores/nearby", query_string={"lat": ADDRESS["lat"], "lng": ADDRESS["lng"]})
    [s001] = [s for s in r.json["stores"] if s["store_id"] == "S001"]
    assert s001["delivery"] and s001["delivery_area"] == {"name": "jingan", "min_order_fen": 30000,
                                                         "delivery_fee_fen": 500}
    assert s001["opening_hours"]["closed"] == [CLOSURE]
    outside = api.get("/api/v1/stores/nearby", query_string={"lat": 31.26, "lng": 121.45}).json["stores"]
    assert all(not s["delivery"] for s in outside if s["store_id"] == "S001")


def test_a_pickup_paid_on_a_closure_day_is_promised_from_the_next_opening(api):
    api.stock(10)
    api.clock.now = datetime(2026, 11, 26, 12, 0, tzinfo=SH)             # the closure day, noon
    order_id = api.order("k-closed")
    api.pay(order_id)
    order = api.get(f"/api/v1/orders/{order_id}").json
    assert order["promised_at"] == "2026-11-27T09:30:00+08:00"
    assert order["routing"]["ready_from"] == "2026-11-27T09:00:00+08:00"
    listed = api.get("/api/v1/stores/S001/orders", key=POS_KEYS["S001"]).json["orders"]
    assert [o["promised_at"] for o in listed if o["order_id"] == order_id] == ["2026-11-27T09:30:00+08:00"]


def test_a_pickup_paid_on_an_open_day_is_promised_half_an_hour_later(api):
    api.stock(10)
    order_id = api.order("k-open")
    api.pay(order_id)
    assert api.get(f"/api/v1/orders/{order_id}").json["promised_at"] == "2026-11-25T10:30:00+08:00"


def test_the_no_show_timer_does_not_count_the_closure(api):
    api.stock(10)
    order_id = api.order("k-noshow")
    api.pay(order_id)                                                    # Wednesday 10:00
    hub = api.ctx
    days = api.ctx.config.hub.pickup_uncollected_days
    paid = api.clock.now
    assert housekeeping.cancel_uncollected(hub, now=paid + timedelta(days=days, minutes=1)) == []
    assert housekeeping.cancel_uncollected(hub, now=paid + timedelta(days=days + 1, minutes=1)) == [order_id]


def test_a_position_in_another_system_is_converted_to_gcj02(api):
    """WeChat's getLocation answers WGS-84 unless asked for gcj02; a Baidu map gives BD-09."""
    from hub.domain.geo import gcj02_to_bd09, gcj02_to_wgs84

    api.stock(10)
    gps = gcj02_to_wgs84(ADDRESS["lat"], ADDRESS["lng"])             # the same spot, as a phone's GPS says it
    body = {"lines": [{"sku": "TEA-001", "qty": 3}], "buyer": BUYER,
            "fulfillment": {"type": "delivery", "address": {**ADDRESS, "lat": gps[0], "lng": gps[1],
                                                            "coords": "wgs84"}}}
    r = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "k-gps"})
    assert r.status_code == 201, r.json
    order = api.get(f"/api/v1/orders/{r.json['order_id']}").json
    assert abs(order["address"]["lat"] - ADDRESS["lat"]) < 1e-7 and abs(order["address"]["lng"] - ADDRESS["lng"]) < 1e-7
    assert order["fulfillment"]["delivery_area"] == "jingan"
    baidu = gcj02_to_bd09(ADDRESS["lat"], ADDRESS["lng"])
    as_baidu = api.get("/api/v1/stores/nearby", query_string={"lat": baidu[0], "lng": baidu[1], "coords": "bd09"})
    as_gcj = api.get("/api/v1/stores/nearby", query_string={"lat": ADDRESS["lat"], "lng": ADDRESS["lng"]})
    assert [(s["store_id"], s["distance_km"]) for s in as_baidu.json["stores"]] == \
        [(s["store_id"], s["distance_km"]) for s in as_gcj.json["stores"]]
    bad = api.get("/api/v1/stores/nearby", query_string={"lat": 31.2, "lng": 121.4, "coords": "utm"})
    assert bad.status_code == 422 and "coords" in bad.json["message"] + str(bad.json.get("field", ""))

"""Source selection with the reasons each candidate was passed over."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from hub.domain.errors import InsufficientStock, NoRoute, StoreCannotFill, UnknownLocation
from hub.domain.model import Address, FulfillmentType, OrderLine
from hub.domain.routing import is_open, route_at_store, route_delivery, route_express, route_pickup
from tests.support import make_config

CFG = make_config(open_all_day=False)
SH = timezone(timedelta(hours=8))
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=SH)
NEAR_S001 = Address("Near Jing'an temple", 31.2250, 121.4450, "Li Lei", "13800138000")
LINES = [OrderLine("TEA-001", 2), OrderLine("CUP-002", 1)]


def stock(**per_location: dict[str, int]) -> dict[str, dict[str, int]]:
    base = {loc.id: {"TEA-001": 0, "CUP-002": 0} for loc in CFG.locations}
    base.update(per_location)
    return base


def reasons(decision) -> dict[str, str]:
    return {c.location_id: c.reason for c in decision.candidates}


def test_pickup_store_must_hold_every_line():
    ok = route_pickup(CFG, LINES, "S001", stock(S001={"TEA-001": 2, "CUP-002": 1}))
    assert ok.location_id == "S001" and ok.allocations == [("CUP-002", "S001", 1), ("TEA-001", "S001", 2)]
    with pytest.raises(InsufficientStock) as exc:
        route_pickup(CFG, LINES, "S001", stock(S001={"TEA-001": 1, "CUP-002": 1}))
    assert exc.value.short == [{"sku": "TEA-001", "location_id": "S001", "wanted": 2, "available": 1}]


def test_pickup_refused_where_not_offered_or_unknown():
    with pytest.raises(NoRoute, match="does not offer pickup"):
        route_pickup(CFG, LINES, "S003", stock(S003={"TEA-001": 9, "CUP-002": 9}))
    with pytest.raises(UnknownLocation):
        route_pickup(CFG, LINES, "WH01", stock())
    with pytest.raises(UnknownLocation):
        route_pickup(CFG, LINES, "S404", stock())


def test_delivery_picks_nearest_store_in_radius_holding_everything():
    full = {"TEA-001": 5, "CUP-002": 5}
    d = route_delivery(CFG, LINES, NEAR_S001, stock(S001={"TEA-001": 1, "CUP-002": 5}, S002=full, S003=full), NOON)
    assert d.fulfillment == FulfillmentType.DELIVERY and d.location_id == "S002"
    why = reasons(d)
    assert why["S001"] == "short of TEA-001 (wants 2, has 1)"
    assert why["S003"].startswith("too far (")
    assert why["S002"] == "nearest store in radius holding every line"


def test_delivery_ranks_by_tie_break_and_explains_the_runner_up():
    full = {"TEA-001": 5, "CUP-002": 5}
    midway = Address("between S001 and S002", 31.2118, 121.4427)
    d = route_delivery(CFG, LINES, midway, stock(S001=full, S002=full), NOON)
    first, second = sorted(d.candidates[:2], key=lambda c: c.distance_km)
    assert d.location_id == first.location_id
    assert "ranked after" in reasons(d)[second.location_id]


def test_closed_store_is_passed_over():
    late = datetime(2026, 11, 25, 22, 30, tzinfo=SH)
    full = {"TEA-001": 5, "CUP-002": 5}
    with pytest.raises(NoRoute) as exc:
        route_delivery(CFG, LINES, NEAR_S001, stock(S001=full), late)
    assert any(r["reason"].startswith("closed now") for r in exc.value.reasons)


def test_delivery_falls_back_to_express_from_a_warehouse():
    d = route_delivery(CFG, LINES, NEAR_S001, stock(WH01={"TEA-001": 50, "CUP-002": 50}), NOON)
    assert d.requested == FulfillmentType.DELIVERY and d.fulfillment == FulfillmentType.EXPRESS
    assert d.location_id == "WH01"
    assert reasons(d)["S001"].startswith("short of")
    assert "express" in d.rule


def test_no_route_lists_every_candidate():
    with pytest.raises(NoRoute) as exc:
        route_delivery(CFG, LINES, NEAR_S001, stock(), NOON)
    assert {r["location_id"] for r in exc.value.reasons} == {"S001", "S002", "S003", "WH01"}


def test_express_split_only_when_allowed():
    two = CFG.model_copy(update={"locations": [*CFG.locations,
                                              CFG.location("WH01").model_copy(update={"id": "WH02"})]})
    s = stock(WH01={"TEA-001": 2, "CUP-002": 0}, WH02={"TEA-001": 0, "CUP-002": 1})
    with pytest.raises(NoRoute):
        route_express(two, LINES, NEAR_S001, s)
    split_cfg = two.model_copy(update={"routing": two.routing.model_copy(update={"allow_split_express": True})})
    d = route_express(split_cfg, LINES, NEAR_S001, s)
    assert sorted(d.allocations) == [("CUP-002", "WH02", 1), ("TEA-001", "WH01", 2)]


def overnight_config(open_: str, close: str):
    """The repository config with every store keeping `open_`-`close` (the tests ask one store)."""
    from pathlib import Path

    from hub.config import DEFAULT_CONFIG_PATH, parse_config
    from tests.support import config_env
    text = re.sub(r"opening_hours: \{[^}]*\}", f'opening_hours: {{open: "{open_}", close: "{close}"}}',
                  Path(DEFAULT_CONFIG_PATH).read_text())
    return parse_config(text, env=config_env(text))


@pytest.mark.parametrize(("hh", "mm", "open_now"), [
    (22, 0, True), (23, 0, True), (0, 0, True), (1, 0, True), (5, 59, True),
    (6, 0, False),                      # closed at exactly close
    (7, 0, False), (12, 0, False), (21, 59, False)])
def test_a_store_open_past_midnight_delivers_through_the_night(hh, mm, open_now):
    cfg = overnight_config("22:00", "06:00")
    at = datetime(2026, 11, 25, hh, mm, tzinfo=SH)
    full = {"TEA-001": 5, "CUP-002": 5}
    held = {loc.id: ({} if loc.id == "S001" else {"TEA-001": 0, "CUP-002": 0}) for loc in cfg.locations}
    held["S001"] = full
    assert is_open(cfg.location("S001"), at) is open_now
    if open_now:
        assert route_delivery(cfg, LINES, NEAR_S001, held, at).location_id == "S001"
    else:
        with pytest.raises(NoRoute) as exc:
            route_delivery(cfg, LINES, NEAR_S001, held, at)
        assert "closed now (open 22:00-06:00)" in {r["location_id"]: r["reason"] for r in exc.value.reasons}["S001"]


def test_a_convenience_store_open_until_two_is_open_at_one_and_at_seven():
    loc = overnight_config("07:00", "02:00").location("S001")
    assert [is_open(loc, datetime(2026, 11, 25, h, tzinfo=SH)) for h in (1, 2, 3, 6, 7, 12, 23)] == \
        [True, False, False, False, True, True, True]


def test_express_from_a_store_that_ships_parcels_only_when_no_warehouse_holds_every_line():
    ships = CFG.model_copy(update={"locations": [loc.model_copy(update={"ships_express": True})
                                                 if loc.id in ("S002", "S003") else loc for loc in CFG.locations]})
    full = {"TEA-001": 2, "CUP-002": 1}
    assert route_express(ships, LINES, NEAR_S001, stock(WH01=full, S002=full)).location_id == "WH01"
    d = route_express(ships, LINES, NEAR_S001, stock(S002=full, S003=full, S001=full))
    assert d.location_id == "S002" and "store shipping parcels" in d.rule      # the nearer of the two that ship
    assert "S001" not in reasons(d)                                             # it packs no parcels
    skipped = route_express(ships, LINES, NEAR_S001, stock(S002=full, S003=full), {"S002": "paused by the store"})
    assert skipped.location_id == "S003" and reasons(skipped)["S002"] == "paused by the store"
    with pytest.raises(NoRoute):
        route_express(CFG, LINES, NEAR_S001, stock(S002=full))                   # no store ships: no route


# -- delivery areas (polygons, GCJ-02) and opening calendars ------------------------------------------

def store_with(cfg, store_id: str, **fields):
    """The config with one store's fields replaced, validated as config.yaml's would be."""
    from hub.config import LocationConfig
    locations = [LocationConfig.model_validate({**loc.model_dump(), **fields}) if loc.id == store_id else loc
                 for loc in cfg.locations]
    return cfg.model_copy(update={"locations": locations})


# Around S001 (31.2291, 121.4484): an L-shaped (concave) inner area and an outer ring's square beyond it.
INNER = {"name": "inner", "min_order_fen": 2000, "delivery_fee_fen": 300,
         "points": [{"lat": 31.215, "lng": 121.435}, {"lat": 31.215, "lng": 121.460}, {"lat": 31.228, "lng": 121.460},
                    {"lat": 31.228, "lng": 121.448}, {"lat": 31.240, "lng": 121.448}, {"lat": 31.240, "lng": 121.435}]}
OUTER = {"name": "outer", "min_order_fen": 50000, "delivery_fee_fen": 800,
         "points": [{"lat": 31.200, "lng": 121.420}, {"lat": 31.200, "lng": 121.480}, {"lat": 31.260, "lng": 121.480},
                    {"lat": 31.260, "lng": 121.420}]}
IN_THE_L = Address("inner, the L's foot", 31.220, 121.455)
IN_THE_NOTCH = Address("the L's notch: outer only", 31.235, 121.455)
FAR_AWAY = Address("Pudong airport", 31.1443, 121.8083)
PRICED = [OrderLine("TEA-001", 2, 12800), OrderLine("CUP-002", 1, 4500)]       # 30100 fen
ONLY_S001 = stock(S001={"TEA-001": 5, "CUP-002": 5})


def area_cfg():
    return store_with(CFG, "S001", delivery_radius_km=0, delivery_areas=[INNER, OUTER])


def test_an_address_in_an_area_is_served_with_that_areas_fee_recorded():
    d = route_delivery(area_cfg(), PRICED, IN_THE_L, ONLY_S001, NOON)
    assert (d.location_id, d.area, d.delivery_fee_fen) == ("S001", "inner", 300)
    s001 = next(c for c in d.candidates if c.location_id == "S001")
    assert (s001.accepted, s001.area, s001.delivery_fee_fen) == (True, "inner", 300)
    assert s001.reason == "nearest store delivering to delivery area inner (fee 300 fen), holding every line"
    assert d.to_dict()["area"] == "inner" and d.to_dict()["delivery_fee_fen"] == 300


def test_the_notch_of_a_concave_area_falls_to_the_next_area_and_its_minimum():
    with pytest.raises(NoRoute) as exc:              # 30100 fen < outer's 50000; nothing else can serve
        route_delivery(area_cfg(), PRICED, IN_THE_NOTCH, ONLY_S001, NOON)
    why = {r["location_id"]: r["reason"] for r in exc.value.reasons}
    assert why["S001"] == "below the minimum order of delivery area outer (50000 fen; the basket is 30100 fen)"
    big = [OrderLine("TEA-001", 4, 12800)]         # 51200 fen
    d = route_delivery(area_cfg(), big, IN_THE_NOTCH, ONLY_S001, NOON)
    assert (d.area, d.delivery_fee_fen) == ("outer", 800)


def test_below_an_areas_minimum_is_recorded_and_another_store_serves():
    small = [OrderLine("CUP-002", 1, 1500)]
    held = stock(S001={"CUP-002": 5}, S002={"CUP-002": 5})
    d = route_delivery(area_cfg(), small, IN_THE_L, held, NOON)
    assert d.location_id == "S002" and d.area is None and d.delivery_fee_fen is None
    assert reasons(d)["S001"] == "below the minimum order of delivery area inner (2000 fen; the basket is 1500 fen)"


def test_outside_every_area_is_recorded_and_express_serves():
    d = route_delivery(area_cfg(), PRICED, FAR_AWAY, stock(S001=ONLY_S001["S001"], WH01={"TEA-001": 9, "CUP-002": 9}),
                       NOON)
    assert d.fulfillment == FulfillmentType.EXPRESS
    assert reasons(d)["S001"] == "outside every delivery area (inner, outer)"


def test_a_point_on_an_areas_edge_is_inside():
    on_edge = Address("on the inner area's southern edge", 31.215, 121.440)
    assert route_delivery(area_cfg(), PRICED, on_edge, ONLY_S001, NOON).area == "inner"


def test_a_store_with_areas_ignores_how_far_the_address_is():
    # The outer square's corner is about 4 km from S001, beyond where a 3 km radius would reach.
    corner = Address("outer corner", 31.2001, 121.4201)
    d = route_delivery(area_cfg(), [OrderLine("TEA-001", 4, 12800)], corner, ONLY_S001, NOON)
    assert d.area == "outer" and d.candidates[0].distance_km > 3


CALENDAR = {"periods": [{"open": "09:00", "close": "14:00"}, {"open": "17:00", "close": "02:00"}],
            "weekly": {"sun": [{"open": "10:00", "close": "18:00"}]},
            "closed": ["2026-11-26"]}


def test_routing_follows_the_calendar_overnight_and_on_a_closure():
    cfg = store_with(CFG, "S001", opening_hours=CALENDAR)
    tue = datetime(2026, 11, 24, 0, 0, tzinfo=SH)              # a Tuesday; Thursday the 26th is closed
    served = {h: route_delivery(cfg, LINES, NEAR_S001, ONLY_S001, tue + timedelta(hours=h)).location_id
              if is_open(cfg.location("S001"), tue + timedelta(hours=h)) else None for h in range(0, 72)}
    open_hours = sorted(h for h, where in served.items() if where == "S001")
    assert open_hours == [0, 1, 9, 10, 11, 12, 13, 17, 18, 19, 20, 21, 22, 23,        # Tuesday
                          24, 25, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 47,      # Wednesday
                          48, 49]                                                       # Thursday: the night only
    with pytest.raises(NoRoute) as exc:
        route_delivery(cfg, LINES, NEAR_S001, ONLY_S001, tue + timedelta(days=2, hours=12))
    assert {r["location_id"]: r["reason"] for r in exc.value.reasons}["S001"] == \
        "closed now (a closure date, closed all day)"
    with pytest.raises(NoRoute) as exc:
        route_delivery(cfg, LINES, NEAR_S001, ONLY_S001, tue + timedelta(hours=15))
    assert {r["location_id"]: r["reason"] for r in exc.value.reasons}["S001"] == \
        "closed now (open 09:00-14:00, 17:00-02:00)"


def test_a_pickup_at_a_store_closed_now_is_ready_from_its_next_opening():
    cfg = store_with(CFG, "S001", opening_hours=CALENDAR)
    held = stock(S001={"TEA-001": 2, "CUP-002": 1})
    d = route_pickup(cfg, LINES, "S001", held, now_local=datetime(2026, 11, 26, 12, 0, tzinfo=SH))   # closure
    assert d.ready_from == "2026-11-27T09:00:00+08:00" and d.to_dict()["ready_from"] == d.ready_from
    assert d.candidates[0].reason.endswith("closed now, opens 2026-11-27 09:00")
    assert route_pickup(cfg, LINES, "S001", held, now_local=NOON).ready_from is None
    shut = store_with(CFG, "S001", opening_hours={**CALENDAR, "closed": [f"2026-12-{d:02d}" for d in range(1, 31)]})
    with pytest.raises(NoRoute, match="closed for the next 14 days"):
        route_pickup(shut, LINES, "S001", held, now_local=datetime(2026, 12, 1, 12, 0, tzinfo=SH))


def test_a_channels_store_serves_its_order_or_says_why_it_cannot():
    """A platform's order names its store: served there even when another is nearer, or refused with the cause
    the platform is told (never routed elsewhere)."""
    full = {"TEA-001": 5, "CUP-002": 5}
    d = route_at_store(CFG, FulfillmentType.DELIVERY, LINES, "S002", stock(S001=full, S002=full), NOON)
    assert (d.location_id, d.fulfillment, d.rule) == ("S002", FulfillmentType.DELIVERY, "channel's store")
    assert d.allocations == [("CUP-002", "S002", 1), ("TEA-001", "S002", 2)]
    late = datetime(2026, 11, 25, 22, 30, tzinfo=SH)
    cases = [(stock(S001=full, S002={"TEA-001": 1, "CUP-002": 5}), NOON, None, "sold_out"),
             (stock(S002=full), late, None, "closed"),
             (stock(S002=full), NOON, {"S002": "paused: lunch rush"}, "busy")]
    for held, when, refused, cause in cases:
        with pytest.raises(StoreCannotFill) as exc:
            route_at_store(CFG, FulfillmentType.DELIVERY, LINES, "S002", held, when, refused)
        assert (exc.value.store_id, exc.value.cause) == ("S002", cause)
    with pytest.raises(StoreCannotFill) as exc:      # a platform's 到店自取 where the store has no counter
        route_at_store(CFG, FulfillmentType.PICKUP, LINES, "S003", stock(S003=full), NOON)
    assert exc.value.cause == "other"
    with pytest.raises(UnknownLocation):
        route_at_store(CFG, FulfillmentType.DELIVERY, LINES, "WH01", stock(), NOON)

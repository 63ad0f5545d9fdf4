"""Source selection with the reasons each candidate was passed over."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone

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
    assert is_open(cfg.location("S001"), at.time()) is open_now
    if open_now:
        assert route_delivery(cfg, LINES, NEAR_S001, held, at).location_id == "S001"
    else:
        with pytest.raises(NoRoute) as exc:
            route_delivery(cfg, LINES, NEAR_S001, held, at)
        assert "closed now (open 22:00-06:00)" in {r["location_id"]: r["reason"] for r in exc.value.reasons}["S001"]


def test_a_convenience_store_open_until_two_is_open_at_one_and_at_seven():
    loc = overnight_config("07:00", "02:00").location("S001")
    assert [is_open(loc, time(h)) for h in (1, 2, 3, 6, 7, 12, 23)] == [True, False, False, False, True, True, True]


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

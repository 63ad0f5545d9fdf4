"""Positions as a hostile client sends them: `coords=bd09|wgs84` at the globe's edges, NaN and Infinity in JSON,
numbers out of range, a point on a delivery area's edge or vertex (inside, by the README's rule). On SQLite and
PostgreSQL, with S001 serving by a delivery area (tests/api/test_areas_and_hours.py's)."""
from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.storage.tables import OrderRow
from tests.api.conftest import ADDRESS, BUYER, Api
from tests.api.test_areas_and_hours import api as api  # noqa: F401  (S001 with its delivery area)

OFF_THE_GLOBE = [(-90, -180), (-90, 180), (90, -180), (-89.999, -179.999)]      # in BD-09: beyond ±90 / ±180


def body(**address: Any) -> dict[str, Any]:
    return {"lines": [{"sku": "TEA-001", "qty": 3}], "buyer": BUYER,
            "fulfillment": {"type": "delivery", "address": {**ADDRESS, **address}}}


def placed(api: Api) -> int:
    with api.ctx.reader() as uow:
        return uow.session.execute(select(func.count()).select_from(OrderRow)).scalar_one()


@pytest.mark.parametrize("lat, lng", OFF_THE_GLOBE)
def test_a_bd09_point_that_converts_off_the_globe_is_422_everywhere(api: Api, lat: float, lng: float) -> None:
    """Baidu's offset took -90 to -90.0055: the order was taken with a latitude no courier or carrier takes."""
    api.stock(10)
    r = api.post("/api/v1/orders", body(lat=lat, lng=lng, coords="bd09"), headers={"Idempotency-Key": "k-pole"})
    assert r.status_code == 422 and r.json["field"] == "fulfillment.address.coords", r.json
    for path in ("/api/v1/stock/TEA-001", "/api/v1/stores/nearby"):
        got = api.get(path, query_string={"lat": lat, "lng": lng, "coords": "bd09", "sku": "TEA-001"}
                      if "nearby" in path else {"lat": lat, "lng": lng, "coords": "bd09"})
        assert got.status_code == 422 and got.json["field"] == "coords", got.json
    assert placed(api) == 0


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400", "90.0000001", '"31.2"', "true", "null"])
def test_nan_infinity_and_odd_latitudes_in_json_are_422(api: Api, raw: str) -> None:
    text = json.dumps(body(lat=0, coords="bd09")).replace('"lat": 0', f'"lat": {raw}')
    r = api.post("/api/v1/orders", data=text, content_type="application/json", headers={"Idempotency-Key": "k-nan"})
    assert r.status_code == 422 and r.json["field"] == "fulfillment.address.lat", r.json
    assert placed(api) == 0


@pytest.mark.parametrize("query", ["lat=nan&lng=121.4", "lat=inf&lng=121.4", "lat=91&lng=121.4&coords=bd09",
                                   "lat=31.2&lng=-181&coords=wgs84", "lat=0x1f&lng=121.4", "lat=31.2",
                                   "lat=31.2&lng=121.4&coords=BD09", "lat=31.2&lng=121.4&coords=%ED%A0%80"])
def test_odd_positions_in_the_query_are_422(api: Api, query: str) -> None:
    for path in ("/api/v1/stock/TEA-001?", "/api/v1/stores/nearby?sku=TEA-001&"):
        r = api.get(path + query)
        assert r.status_code == 422, (path, r.json)


@pytest.mark.parametrize("lat, lng", [(31.215, 121.445), (31.235, 121.455), (31.225, 121.435)],
                         ids=["south-edge", "vertex", "west-edge"])
def test_a_point_on_the_areas_edge_or_vertex_is_served_by_it(api: Api, lat: float, lng: float) -> None:
    api.stock(10)
    r = api.post("/api/v1/orders", body(lat=lat, lng=lng), headers={"Idempotency-Key": f"k-{lat}-{lng}"})
    assert r.status_code == 201, r.json
    order = api.get(f"/api/v1/orders/{r.json['order_id']}").json
    assert (order["fulfillment"]["store_id"], order["fulfillment"]["delivery_area"]) == ("S001", "jingan")
    nearby = api.get("/api/v1/stores/nearby", query_string={"lat": lat, "lng": lng, "sku": "TEA-001", "qty": 3})
    assert nearby.status_code == 200
    [s001] = [s for s in nearby.json["stores"] if s["store_id"] == "S001"]
    assert s001["delivery"] is True, s001

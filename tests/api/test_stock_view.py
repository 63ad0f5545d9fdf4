"""The stock answer rendered from fragments encoded once (hub/api/stock_view.py) is the answer the generic
path gives: the same bytes, figures and every configured location, also for a SKU no location holds."""
from __future__ import annotations

import json

from hub.api import stock_view
from hub.api.http import json_response
from hub.domain.stock import available, channel_available
from hub.services import inventory


def generic_answer(api, sku: str) -> bytes:
    """The answer as the handler built it before: a dict per location, encoded by json_response."""
    cfg = api.ctx.config
    channel = cfg.channel("miniprogram")
    with api.ctx.reader() as uow:
        levels = inventory.stock_of(uow.session, cfg, sku)
    locations = []
    for level in levels:
        loc = cfg.location(level.location_id)
        locations.append({"location_id": loc.id, "kind": loc.kind, "name": loc.name,
                          "available": channel_available(level.available, channel.safety_stock)})
    body = {"sku": sku, "available": sum(x["available"] for x in locations), "locations": locations}
    return json_response(body).get_data()


def test_the_stock_answer_is_byte_for_byte_the_generic_one(api):
    api.stock(10, locations=("S001", "S003", "WH01"))
    api.order(qty=3)                                  # reserved units count too
    r = api.get("/api/v1/stock/TEA-001")
    assert r.status_code == 200 and r.content_type == "application/json; charset=utf-8"
    assert r.data == generic_answer(api, "TEA-001")
    by_loc = {x["location_id"]: x["available"] for x in r.json["locations"]}
    assert by_loc["S001"] == 6 and by_loc["S002"] == 0          # 10 - 3 reserved - the channel's 1
    assert len(r.json["locations"]) == len(api.ctx.config.locations)


def test_a_known_sku_no_location_holds_is_all_zeros_not_404(api):
    api.stock(10, locations=("S001",), skus=("TEA-001",))
    r = api.get("/api/v1/stock/CUP-002")
    assert r.status_code == 200 and r.json["available"] == 0
    assert {x["available"] for x in r.json["locations"]} == {0}
    assert r.data == generic_answer(api, "CUP-002")
    assert api.get("/api/v1/stock/NOPE-404").status_code == 404


def test_odd_names_and_safety_stocks_render_as_the_generic_encoding_would(api):
    """Names with a '%' (the template is %-formatted), quotes and Chinese; per-location safety stocks; a
    location short of its reservations; a SKU code with a '%' in it."""
    cfg = api.ctx.config
    locs = [loc.model_copy(update={"name": f'{loc.name} 100% "南京路" %d', "safety_stock": i % 3})
            for i, loc in enumerate(cfg.locations)]
    odd = cfg.model_copy(update={"locations": locs})
    sellable = {locs[0].id: 10, locs[1].id: -3, locs[2].id: 2}
    got = stock_view.render(odd, "TEA-%d", sellable, 1).get_data()
    items = [{"location_id": loc.id, "kind": loc.kind, "name": loc.name,
              "available": available(sellable.get(loc.id, 0), 0, loc.safety_stock, 1)} for loc in locs]
    expected = {"sku": "TEA-%d", "available": sum(x["available"] for x in items), "locations": items}
    assert got == json_response(expected).get_data()
    assert json.loads(got)["locations"][0]["available"] == 10 - 0 - 1

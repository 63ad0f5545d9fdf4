"""The mini-program's stock answer (no position given) rendered from JSON fragments built once per config.

With a thousand stores, building a dict per location and encoding them was most of a stock request's CPU;
here each location's part of the answer is encoded once, and a request only adds its figures. The bytes are
those `json_response` gives for the same answer (tests/api/test_stock_view.py compares the two)."""
from __future__ import annotations

import json
from itertools import repeat
from typing import Any

from werkzeug import Response

from hub.config import HubConfig
from hub.domain.stock import available_each

# config -> (its answer as one %-template: a fragment per configured location with a %d for its figure; the
# location ids and safety stocks in that order). The config is held, so its id cannot be reused by another
# while it is cached.
_TEMPLATES: dict[int, tuple[HubConfig, str, list[str], list[int]]] = {}
# (config id, channel safety) -> each location's safety stock plus the channel's, in the template's order.
_HELD_BACK: dict[tuple[int, int], list[int]] = {}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _template(cfg: HubConfig) -> tuple[str, list[str], list[int]]:
    hit = _TEMPLATES.get(id(cfg))
    if hit is None or hit[0] is not cfg:
        if len(_TEMPLATES) > 16:              # tests build many configs; a process serves one
            _TEMPLATES.clear()
            _HELD_BACK.clear()
        parts = []
        for loc in cfg.locations:
            encoded = _dumps({"location_id": loc.id, "kind": loc.kind, "name": loc.name, "available": 0})
            parts.append(encoded[:-2].replace("%", "%%") + "%d}")         # the placeholder "0}" made a %d
        template = '{"sku":%s,"available":%d,"locations":[' + ",".join(parts) + "]}"
        hit = _TEMPLATES[id(cfg)] = (cfg, template, [loc.id for loc in cfg.locations],
                                     [loc.safety_stock for loc in cfg.locations])
    return hit[1], hit[2], hit[3]


def render(cfg: HubConfig, sku: str, sellable: dict[str, int], channel_safety: int) -> Response:
    """`{sku, available, locations: [{location_id, kind, name, available}]}` for every configured location;
    `sellable` maps location_id -> on-hand less reserved (`inventory.sellable_of`), a location without a row
    holds nothing. One list of figures and one %-format over the template: no string built per location."""
    template, ids, safeties = _template(cfg)
    held_back = _HELD_BACK.get((id(cfg), channel_safety))
    if held_back is None:
        held_back = _HELD_BACK[id(cfg), channel_safety] = [s + channel_safety for s in safeties]
    figures = available_each(map(sellable.get, ids, repeat(0)), held_back)
    payload = template % (_dumps(sku), sum(figures), *figures)
    return Response(payload, status=200, content_type="application/json; charset=utf-8")

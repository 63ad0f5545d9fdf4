"""The mini-program's stock answer (no position given) rendered from JSON fragments built once per config.

With a thousand stores, building a dict per location and encoding them was most of a stock request's CPU;
here each location's part of the answer is encoded once, and a request only adds its figures. The bytes are
those `json_response` gives for the same answer (tests/api/test_shop.py compares the two)."""
from __future__ import annotations

import json
from typing import Any

from werkzeug import Response

from hub.config import HubConfig
from hub.domain.stock import available

# config -> one (location_id, safety stock, '{"location_id":…,"available":') per configured location.
# The config is held, so its id cannot be reused by another while it is cached.
_FRAGMENTS: dict[int, tuple[HubConfig, list[tuple[str, int, str]]]] = {}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _fragments(cfg: HubConfig) -> list[tuple[str, int, str]]:
    hit = _FRAGMENTS.get(id(cfg))
    if hit is None or hit[0] is not cfg:
        if len(_FRAGMENTS) > 16:              # tests build many configs; a process serves one
            _FRAGMENTS.clear()
        parts = []
        for loc in cfg.locations:
            encoded = _dumps({"location_id": loc.id, "kind": loc.kind, "name": loc.name, "available": 0})
            parts.append((loc.id, loc.safety_stock, encoded[:-2]))         # cut the placeholder "0}"
        hit = _FRAGMENTS[id(cfg)] = (cfg, parts)
    return hit[1]


def render(cfg: HubConfig, sku: str, held: dict[str, tuple[int, int]], channel_safety: int) -> Response:
    """`{sku, available, locations: [{location_id, kind, name, available}]}` for every configured location;
    `held` maps location_id -> (on_hand, reserved), a location without a row holds nothing."""
    items, total = [], 0
    for location_id, safety, head in _fragments(cfg):
        on_hand, reserved = held.get(location_id, (0, 0))
        figure = available(on_hand, reserved, safety, channel_safety)
        total += figure
        items.append(f"{head}{figure}}}")
    payload = f'{{"sku":{_dumps(sku)},"available":{total},"locations":[{",".join(items)}]}}'
    return Response(payload, status=200, content_type="application/json; charset=utf-8")

"""No request to any route answers 5xx: hypothesis sends each route of the route table (shop, store,
flash sales, ERP, operations, console, callbacks) bodies built from its own schema and mangled (non-ASCII,
full-width digits, calendar edges, huge numbers, wrong types, raw bytes), odd path ids and right, wrong and
missing keys. A 503 with Retry-After is right only while the database is away (tests/api/test_store.py);
nothing here takes it away, so every 5xx fails the test."""
from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import handlers
from hub.api import schemas
from hub.api.app import ROUTES
from hub.api.http import Route
from hub.consumers import park
from tests.support import T0

from .conftest import CHANNEL_KEY, ERP_KEY, OPS_KEY, POS_KEYS

EXAMPLES = int(os.environ.get("HUB_NO_5XX_EXAMPLES", "80"))     # per route; raise it for a deep run
ODD_TEXT = st.sampled_from(["", " ", "１２３４５６", "é", "S001\x00", "../../etc", "%", "x" * 300, "null", "0",
                            "-1", "9" * 30, "TEA-001", "S001", "1e9", "NaN", "\u202e", "😀"])
ODD_TIME = st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-11-25T10:00:00",
                            "2026-13-01T00:00:00+08:00", "2026-11-25T09:59:00+08:00", "2126-11-25T10:00:00+08:00",
                            "１９９９-01-01T00:00:00+08:00", "yesterday", ""])
ODD_NUMBER = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0, -1, 1, 2**63, 10**12]))
JSON = st.recursive(st.none() | st.booleans() | ODD_NUMBER | ODD_TEXT | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
KEYS = {"channel": CHANNEL_KEY, "store": POS_KEYS["S001"], "erp": ERP_KEY, "ops": OPS_KEY, "admin": OPS_KEY}


def value_for(spec: schemas.Field, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value for one field: mostly what the schema wants, sometimes anything at all."""
    if isinstance(spec, schemas.Str):
        good = st.sampled_from(spec.enum) if spec.enum else st.one_of(
            st.sampled_from(["TEA-001", "CUP-002", "S001", "WH01", "R-1", "123456", "oBuyer1", "13800138000"]),
            st.text(min_size=spec.min_len, max_size=min(spec.max_len, 20)))
        sample = st.one_of(good, ODD_TEXT)
    elif isinstance(spec, schemas.Int):
        sample = st.one_of(st.integers(spec.minimum if spec.minimum is not None else -5, 20), ODD_NUMBER)
    elif isinstance(spec, schemas.Num):
        sample = st.one_of(st.floats(-90, 90), ODD_NUMBER)
    elif isinstance(spec, schemas.Time):
        sample = st.one_of(st.integers(-600, 10).map(lambda m: (T0.replace(second=0).isoformat()
                                                                  if m == 0 else _minutes(m))), ODD_TIME)
    elif isinstance(spec, schemas.Arr):
        sample = st.lists(value_for(spec.item, depth + 1), min_size=0, max_size=3)
    elif isinstance(spec, schemas.Obj):
        fields = {name: value_for(f, depth + 1) for name, f in spec.fields.items()}
        sample = st.fixed_dictionaries({}, optional=fields) if depth < 4 else st.just({})
    elif hasattr(spec, "schema") and "oneOf" in spec.schema():      # the till's receipt or batch
        sample = st.one_of(value_for(schemas.SALE, depth), value_for(schemas.SALE_BATCH, depth))
    else:
        sample = JSON
    return st.one_of(sample, JSON) if depth else sample


def _minutes(m: int) -> str:
    from datetime import timedelta
    return (T0 + timedelta(minutes=m)).isoformat()


@st.composite
def requests(draw, route: Route, ids: dict[str, list[str]]):
    params = {}
    for name in (p[1:-1] for p in route.path.split("/") if p.startswith("{")):
        real = st.sampled_from(ids.get(name, ["X1"]))
        params[name] = draw(st.one_of(real, real, real, ODD_TEXT))        # mostly ids that exist
    path = route.path.format(**{k: v.replace("/", "%2F") for k, v in params.items()})
    key = KEYS.get(route.audience)
    auth = draw(st.sampled_from([key] * 6 + ["wrong-key-0000000", None])) if key else None
    headers = {"Authorization": f"Bearer {auth}"} if auth else {}
    if draw(st.integers(0, 9)) == 0:           # an odd Authorization header of any scheme
        headers["Authorization"] = draw(st.sampled_from(["Basic é", "Basic ###", "Bearer é", "Basic", "Bearer ",
                                                         "Basic b3BzOsOp", "Digest x", "é"]))
    if route.headers:
        headers["Idempotency-Key"] = draw(st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=255),
                                                            min_size=1, max_size=8),
                                                    st.sampled_from(["k-1", "k-2", "é"])))
    query = {p.name: draw(st.one_of(st.sampled_from(["1", "S001", "TEA-001", "allocated", "31.2", "121.4"]),
                                    ODD_TEXT)) for p in route.query if draw(st.booleans())}
    body: bytes | None = None
    if route.method in ("POST", "PUT"):
        kind = draw(st.sampled_from(["schema", "schema", "json", "bytes", "none"]))
        if kind == "schema":
            spec = route.body or (schemas.Obj(fields={}) if route.audience != "callback" else None)
            body = json.dumps(draw(value_for(spec)) if spec else draw(JSON), ensure_ascii=False).encode()
        elif kind == "json":
            body = json.dumps(draw(JSON), ensure_ascii=False).encode()
        elif kind == "bytes":
            body = draw(st.binary(max_size=64))
    return route.method, path, headers, query, body


def _seed(api) -> dict[str, list[str]]:
    """An order of each kind, a parked dead letter and a flash sale, so ids in paths can be real ones."""
    api.stock(10)
    pickup = api.order("seed-p")
    api.pay(pickup)
    api.post(f"/api/v1/stores/S001/pickup-orders/{pickup}/ready", key=POS_KEYS["S001"])   # a code can be tried
    delivery = api.order("seed-d", kind="delivery")
    letter = park(api.ctx, handlers.STORE_ORDER_TO_POS.name, {"id": "m-1", "type": "order.status_changed",
                                                      "data": {"order_id": pickup}}, "RuntimeError: boom", 5)
    sale = api.post("/admin/api/flash-sales", {"sku": "CUP-002", "location_id": "S001", "quota": 2,
                                               "per_buyer_limit": 1, "starts_at": _minutes(-10),
                                               "ends_at": _minutes(600)}, key=OPS_KEY)
    sale_ids = [sale.json["sale_id"]] if sale.status_code in (200, 201) else []
    return {"order_id": [pickup, delivery], "store_id": ["S001", "S001", "S002"], "sku": ["TEA-001", "CUP-002"],
            "dead_letter_id": [str(letter), "S001", "999999"], "sale_id": sale_ids + ["FS-NOPE"],
            "connector": ["wechat_pay", "wechat_shop", "express", "local_delivery", "erp", "nope"]}


def _label(route: Route) -> str:
    return f"{route.method} {route.path}"


@pytest.mark.parametrize("route", ROUTES, ids=_label)
def test_no_request_to_any_route_answers_5xx(api, route):
    ids = _seed(api)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(requests(route, ids))
    def never_5xx(req):
        method, path, headers, query, body = req
        r = api.client.open(path, method=method, headers=headers, query_string=query, data=body)
        assert r.status_code < 500, f"{method} {path} {query} {headers} {body!r:.300} -> {r.status_code} " \
                                    f"{r.get_data(as_text=True)[:300]}"

    never_5xx()

"""Unicode and integer edges on every route: the route table is walked and each audience's key sends, one at a
time, a lone UTF-16 surrogate in every string field, query and path parameter, and 2^31, 2^63, 10^12 and -1 in
every integer field (the rest of the body well-formed). Every answer is a 4xx (JSON, except a callback's, which
answers in its sender's format) and nothing changed: no ledger row, order, refund, sale or message more.
On SQLite and PostgreSQL: SQLite would store what PostgreSQL's INTEGER and UTF-8 columns refuse with a 500.

Then the issue's own cases, each by name (issue 19, items 5, 6, 10, 11)."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.api import schemas
from hub.api.app import ROUTES
from hub.api.http import Route
from hub.domain.limits import INT_MAX, INT_MIN
from hub.domain.model import Buyer, Fulfillment, FulfillmentType, OrderLine, PlaceOrder
from hub.storage.tables import (
    FlashSaleRow,
    OrderRow,
    OrderTransition,
    OutboxMessage,
    RefundRow,
    SkuRow,
    StockMovement,
)
from tests.api.conftest import POS_KEYS, order_body
from tests.api.test_no_5xx import KEYS, _seed
from tests.support import T0

SURROGATE = "\ud800"                 # json.dumps writes it as the escape "\ud800", as a hostile client would
SURROGATE_URL = "%ED%A0%80"           # its (invalid) UTF-8 bytes, the only way it can travel in a URL
INTEGERS = (2**31, 2**63, 10**12, -1)
COUNTED = (StockMovement, OrderRow, OrderTransition, RefundRow, FlashSaleRow, OutboxMessage)
STORE = "/api/v1/stores/S001"


def counts(api) -> dict[str, int]:
    with api.ctx.reader() as uow:
        return {t.__tablename__: uow.session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in COUNTED}


def filler(spec: schemas.Field, name: str = "") -> Any:
    """A plausible value for a field, so that only the one edge value makes the body wrong."""
    if isinstance(spec, schemas.Str):
        if spec.enum:
            return spec.enum[0]
        plausible = {"sku": "TEA-001", "store_id": "S001", "location_id": "S001", "pickup_code": "123456"}
        return plausible.get(name, "x1")
    if isinstance(spec, schemas.Int):
        return max(spec.low, 1)
    if isinstance(spec, schemas.Num):
        return 31.2
    if isinstance(spec, schemas.Time):
        return T0.isoformat()
    if isinstance(spec, schemas.Arr):
        return [filler(spec.item, name)]
    if isinstance(spec, schemas.Obj):
        return {n: filler(f, n) for n, f in spec.fields.items()}
    if "oneOf" in spec.schema():            # the till's receipt or batch: the receipt
        return filler(schemas.SALE)
    return {"x": "x1"}


def leaves(spec: schemas.Field, path: tuple = ()) -> list[tuple[tuple, schemas.Field]]:
    """(where in the filler, field) of every string and integer field."""
    if isinstance(spec, schemas.Str | schemas.Int):
        return [(path, spec)]
    if isinstance(spec, schemas.Arr):
        return leaves(spec.item, (*path, 0))
    if isinstance(spec, schemas.Obj):
        return [leaf for n, f in spec.fields.items() for leaf in leaves(f, (*path, n))]
    if "oneOf" in spec.schema():
        return leaves(schemas.SALE, path)
    return []


def with_value(body: Any, path: tuple, value: Any) -> Any:
    body = json.loads(json.dumps(body))
    if not path:
        return value
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def edges(route: Route) -> list[tuple[str, dict[str, str], Any]]:
    """(what is edged, query, body) of each request to send to `route`."""
    spec = route.body if route.body is not None else None
    base = filler(spec) if spec is not None else ({"x": "x1"} if route.method in ("POST", "PUT") else None)
    out: list[tuple[str, dict[str, str], Any]] = []
    if spec is not None:
        for path, field in leaves(spec):
            where = ".".join(map(str, path))
            if isinstance(field, schemas.Str):
                out.append((f"{where}=surrogate", {}, with_value(base, path, SURROGATE)))
            else:
                out += [(f"{where}={n}", {}, with_value(base, path, n)) for n in INTEGERS
                        if not field.low <= n <= field.high]
    elif base is not None:                  # a callback: its body is its sender's, still JSON may carry one
        out.append(("body=surrogate", {}, {"x": SURROGATE, SURROGATE: "x1"}))
    for p in route.query:
        if isinstance(p.spec, schemas.Int):
            out += [(f"?{p.name}={n}", {p.name: str(n)}, base) for n in INTEGERS if not p.spec.low <= n <= p.spec.high]
        else:
            out.append((f"?{p.name}=surrogate", {p.name: SURROGATE_URL}, base))
    return out


def schemas_of(route: Route, what: str) -> schemas.Field | None:
    """The spec of the query parameter an edge names, if it names one."""
    name = what[1:].split("=")[0]
    return next((p.spec for p in route.query if p.name == name), None)


def _path(route: Route, ids: dict[str, list[str]], edged: str | None = None) -> str:
    names = [p[1:-1] for p in route.path.split("/") if p.startswith("{")]
    return route.path.format(**{n: (SURROGATE_URL if n == edged else ids.get(n, ["X1"])[0]) for n in names})


def _send(api, route: Route, path: str, query: dict[str, str], body: Any):
    headers = {"Idempotency-Key": "edge-1"} if route.headers else {}
    key = KEYS.get(route.audience)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    qs = "&".join(f"{k}={v}" for k, v in query.items())     # already URL-encoded: the surrogate's bytes too
    data = json.dumps(body).encode() if body is not None else None
    return api.client.open(path, method=route.method, headers=headers, query_string=qs, data=data,
                           content_type="application/json")


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method in ("POST", "PUT") or r.query or "{" in r.path],
                         ids=lambda r: f"{r.method} {r.path}")
def test_every_route_answers_unicode_and_integer_edges_with_a_4xx_and_changes_nothing(api, route):
    ids = _seed(api)
    before = counts(api)
    sent = [(what, _path(route, ids), query, body) for what, query, body in edges(route)]
    sent += [(f"{{{n}}}=surrogate", _path(route, ids, n), {}, filler(route.body) if route.body else None)
             for n in (p[1:-1] for p in route.path.split("/") if p.startswith("{"))]
    assert sent, "no edge to send: the walk missed this route"
    for what, path, query, body in sent:
        r = _send(api, route, path, query, body)
        said = f"{route.method} {route.path} {what} -> {r.status_code} {r.get_data()[:300]!r}"
        # The URL's bytes are decoded with replacement characters: a search for "\ufffd" may find nothing (200);
        # in a body, the surrogate and the integers are the client's own and always refused.
        in_url = what.startswith(("?", "{")) and not isinstance(schemas_of(route, what), schemas.Int)
        assert r.status_code < 500 and (in_url and route.method == "GET" or r.status_code >= 400), said
        if r.status_code >= 400 and route.audience != "callback":
            assert r.is_json and r.json.get("error"), f"{route.method} {route.path} {what}: not a JSON error"
    assert counts(api) == before


# -- item 5: integers fit their columns ------------------------------------------------------------

def test_an_order_whose_total_is_beyond_an_integer_is_422_not_500(api):
    with api.ctx.uow() as uow:
        uow.session.get(SkuRow, "TEA-001").price_fen = 36_000
        uow.commit()
    api.stock(1_000_000, locations=("S001",), skus=("TEA-001",))     # the stock is there: only the total is wrong
    body = order_body(qty=9999)
    body["lines"] = body["lines"] * 100                               # 100 x 9,999 x 360.00 yuan = 3.6e10 fen
    before = counts(api)
    r = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "huge"})
    assert r.status_code == 422 and "total" in r.json["message"], r.json
    assert counts(api) == before


def test_paying_1e12_fen_is_422_and_asks_no_refund(api):
    api.stock(10)
    order_id = api.order("pay-huge")
    before = counts(api)
    r = api.post(f"/api/v1/orders/{order_id}/pay", {"payment_ref": "tx-huge", "amount_fen": 10**12})
    assert r.status_code == 422 and r.json["field"] == "amount_fen", r.json
    assert counts(api) == before


def test_a_batch_of_sales_taking_on_hand_below_an_integer_is_refused_per_receipt(api):
    api.stock(10, locations=("S001",), skus=("TEA-001",))
    sold_at = T0.isoformat()
    receipts = [{"receipt_id": f"R{i}", "sold_at": sold_at, "lines": [{"sku": "TEA-001", "qty": 100_000}] * 440}
                for i in range(50)]                    # 50 x 44,000,000: 2.2e9 units, more than an INTEGER
    r = api.post(f"{STORE}/sales", {"receipts": receipts}, key=POS_KEYS["S001"])
    assert r.status_code == 200, r.get_data()[:300]
    refused = [x for x in r.json["receipts"] if x["status"] == "refused"]
    assert refused and all(x["code"] == "too_large" for x in refused)
    assert r.json["applied"] == 50 - len(refused)
    on_hand = api.level().on_hand
    assert INT_MIN <= on_hand == 10 - 44_000_000 * r.json["applied"]


def test_a_pos_webhook_count_of_3e9_is_422_and_changes_nothing(api):
    from hub.storage.bindings import SqlBinder
    from sandbox import pos as pos_sim
    pos_sim.seed_binder(SqlBinder(api.ctx.session_factory), ["TEA-001"])
    api.stock(10)
    sim = pos_sim.PosSimulator(api_key="unused")
    change = sim.physical_count("TEA-001", 3_000_000_000, "S001", change_id="CNT-HUGE",
                                occurred_at=T0 - timedelta(minutes=1))
    before = counts(api)
    r = api.post(f"{STORE}/inventory-changes", {"changes": [change]}, key=POS_KEYS["S001"])
    assert r.status_code == 422, r.get_data()[:300]
    assert counts(api) == before and api.level().on_hand == 10


# -- item 6: strings are valid UTF-8 ---------------------------------------------------------------

@pytest.mark.parametrize("where", ["sku", "buyer"])
def test_a_lone_surrogate_in_an_order_is_400(api, where):
    body = json.loads(json.dumps(order_body()))          # a copy: the buyer is shared with other tests
    if where == "sku":
        body["lines"][0]["sku"] = SURROGATE
    else:
        body["buyer"]["name"] = "Li" + SURROGATE
    r = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "sur"})
    assert r.status_code == 400 and r.json["error"] == "invalid_unicode", r.json


def test_a_lone_surrogate_in_a_sale_or_a_reason_is_400_and_changes_nothing(api):
    api.stock(10)
    order_id = api.order("sur-reason")
    before = counts(api)
    sale = {"receipt_id": "R" + SURROGATE, "sold_at": T0.isoformat(), "lines": [{"sku": "TEA-001", "qty": 1}]}
    answers = [api.post(f"{STORE}/sales", sale, key=POS_KEYS["S001"]),
               api.post(f"{STORE}/sales", {**sale, "receipt_id": "R1", "lines": [{"sku": SURROGATE, "qty": 1}]},
                        key=POS_KEYS["S001"]),
               api.post(f"/api/v1/orders/{order_id}/cancel", {"reason": SURROGATE})]
    assert [(r.status_code, r.json["error"]) for r in answers] == [(400, "invalid_unicode")] * 3
    assert counts(api) == before


def test_a_string_field_refuses_a_lone_surrogate_itself():
    """Values that do not come through the JSON body (a query) are checked by their spec too."""
    with pytest.raises(Exception) as caught:
        schemas.SKU.parse("TEA" + SURROGATE, "sku")
    assert caught.value.status == 422 and "surrogate" in caught.value.message
    assert schemas.SKU.parse("茶-001", "sku") == "茶-001"


def test_an_integer_field_is_bounded_by_its_column_whatever_it_declares():
    assert schemas.Int(minimum=0).schema() == {"type": "integer", "minimum": 0, "maximum": INT_MAX}
    assert schemas.Int(minimum=0).parse(INT_MAX, "n") == INT_MAX
    with pytest.raises(Exception) as caught:
        schemas.Int(minimum=0, maximum=10**16).parse(INT_MAX + 1, "n")
    assert caught.value.status == 422 and str(INT_MAX) in caught.value.message


# -- item 10: a retried request is the same request ------------------------------------------------

def test_an_identical_retry_after_a_price_change_is_the_same_order(api):
    api.stock(10)
    body = order_body(qty=2)
    first = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "retry-price"})
    assert first.status_code == 201
    with api.ctx.uow() as uow:                            # an ERP price pull between the two
        uow.session.get(SkuRow, "TEA-001").price_fen += 100
        uow.commit()
    again = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "retry-price"})
    assert again.status_code == 200, again.json
    assert again.json["order_id"] == first.json["order_id"] and again.json["total_fen"] == first.json["total_fen"]
    other = api.post("/api/v1/orders", order_body(qty=3), headers={"Idempotency-Key": "retry-price"})
    assert other.status_code == 422 and other.json["error"] == "idempotency_conflict"     # another body: refused
    assert api.level().reserved == 2


def test_an_order_placed_before_the_upgrade_still_matches_its_retry(api):
    """Orders placed before hold the hash of the lines with their prices: a retry matches it while the
    price is unchanged (as it did then), rather than being refused the moment the hub is upgraded."""
    api.stock(10)
    body = order_body(qty=2)
    first = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "old-hash"})
    with api.ctx.uow() as uow:
        order = uow.session.get(OrderRow, first.json["order_id"])
        cmd = PlaceOrder(channel=order.channel, idempotency_key="old-hash",
                         lines=(OrderLine("TEA-001", 2, uow.session.get(SkuRow, "TEA-001").price_fen),),
                         buyer=Buyer(**{k: body["buyer"][k] for k in ("id", "name", "phone")}),
                         fulfillment=Fulfillment(FulfillmentType.PICKUP, "S001"))
        order.request_hash = cmd._priced_fingerprint()
        assert order.request_hash != cmd.fingerprint()
        uow.commit()
    again = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "old-hash"})
    assert again.status_code == 200 and again.json["order_id"] == first.json["order_id"]


def test_the_fingerprint_is_what_the_client_sent_and_names_the_flash_sale():
    def cmd(price: int = 1200, sale: str | None = None, qty: int = 1) -> PlaceOrder:
        return PlaceOrder(channel="miniprogram", idempotency_key="k", lines=(OrderLine("TEA-001", qty, price),),
                          buyer=Buyer("oBuyer1"), fulfillment=Fulfillment(FulfillmentType.PICKUP, "S001"),
                          flash_sale_id=sale)
    assert cmd(1200).fingerprint() == cmd(1300).fingerprint()            # the price is the hub's, not the client's
    assert cmd(sale="FS-1").fingerprint() != cmd(sale="FS-2").fingerprint() != cmd().fingerprint()
    assert cmd(qty=2).fingerprint() != cmd().fingerprint()


# -- item 11: one receipt id, two receipts ---------------------------------------------------------

def test_a_batch_with_one_receipt_id_twice_and_other_lines_is_refused_whole(api):
    api.stock(10)
    at = T0.isoformat()
    receipts = [{"receipt_id": "R-9", "sold_at": at, "lines": [{"sku": "TEA-001", "qty": 1}]},
                {"receipt_id": "R-9", "sold_at": at, "lines": [{"sku": "CUP-002", "qty": 2}]}]
    before = counts(api)
    r = api.post(f"{STORE}/sales", {"receipts": receipts}, key=POS_KEYS["S001"])
    assert r.status_code == 422 and r.json["error"] == "receipt_conflict", r.json
    assert r.json["field"] == "receipts[1].receipt_id"
    assert counts(api) == before and api.level().on_hand == 10 and api.level(sku="CUP-002").on_hand == 10


def test_one_receipt_id_sent_again_with_other_lines_is_refused_not_applied_per_sku(api):
    """The single-receipt path used to apply R-7's CUP-002 line beside the TEA-001 it held (once per
    receipt + SKU): another sale under a key already used. A retry (the same receipt) is still a duplicate."""
    api.stock(10)
    at = T0.isoformat()
    receipt = {"receipt_id": "R-7", "sold_at": at, "lines": [{"sku": "TEA-001", "qty": 1}]}
    assert api.post(f"{STORE}/sales", receipt, key=POS_KEYS["S001"]).status_code == 201
    before = counts(api)
    for other in ({**receipt, "lines": [{"sku": "TEA-001", "qty": 1}, {"sku": "CUP-002", "qty": 2}]},
                  {**receipt, "lines": [{"sku": "TEA-001", "qty": 3}]},
                  {**receipt, "sold_at": (T0 + timedelta(minutes=1)).isoformat()}):
        r = api.post(f"{STORE}/sales", other, key=POS_KEYS["S001"])
        assert r.status_code == 422 and r.json["error"] == "receipt_conflict", r.json
        assert r.json["field"] == "receipt_id"
    assert counts(api) == before and api.level().on_hand == 9 and api.level(sku="CUP-002").on_hand == 10
    again = api.post(f"{STORE}/sales", receipt, key=POS_KEYS["S001"])
    assert again.status_code == 200 and again.json["duplicate"] is True and api.level().on_hand == 9
    # In a batch, the same: that receipt is refused with the reason, the others go on.
    fresh = {"receipt_id": "R-6", "sold_at": at, "lines": [{"sku": "CUP-002", "qty": 1}]}
    r = api.post(f"{STORE}/sales", {"receipts": [{**receipt, "lines": [{"sku": "CUP-002", "qty": 2}]}, fresh]},
                 key=POS_KEYS["S001"])
    assert r.status_code == 200 and [(x["status"], x.get("code")) for x in r.json["receipts"]] == [
        ("refused", "receipt_conflict"), ("applied", None)]
    assert api.level(sku="CUP-002").on_hand == 9 and api.level().on_hand == 9


def test_a_batch_with_the_same_receipt_twice_unchanged_applies_it_once(api):
    api.stock(10)
    receipt = {"receipt_id": "R-8", "sold_at": T0.isoformat(), "lines": [{"sku": "TEA-001", "qty": 1}]}
    r = api.post(f"{STORE}/sales", {"receipts": [receipt, receipt]}, key=POS_KEYS["S001"])
    assert r.status_code == 200 and [x["status"] for x in r.json["receipts"]] == ["applied", "duplicate"]
    assert api.level().on_hand == 9


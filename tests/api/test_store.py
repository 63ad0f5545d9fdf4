"""A store's POS: pickup orders, ready, collect with the code (and its lockout), sales and counts."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub.storage.tables import ErpFeedEntry, OrderRow, OutboxMessage, StockMovement
from tests.support import statements_run

from .conftest import POS_KEYS

S1 = POS_KEYS["S001"]
BASE = "/api/v1/stores/S001"


def paid_pickup(api, key="k1", qty=2):
    oid = api.order(key, qty=qty)
    api.pay(oid, f"tx-{key}")
    return oid


def code_of(api, oid):
    return api.get(f"/api/v1/orders/{oid}").json["pickup_code"]


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def movements(api) -> int:
    with api.ctx.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(StockMovement)).scalar_one()


def test_pickup_orders_lists_paid_orders_of_this_store_without_codes(api):
    api.stock(10)
    unpaid = api.order("k0")
    oid = paid_pickup(api)
    r = api.get(f"{BASE}/pickup-orders", key=S1)
    assert r.status_code == 200
    [o] = r.json["orders"]
    assert o["order_id"] == oid and o["status"] == "allocated" and unpaid not in r.get_data(as_text=True)
    assert o["buyer"] == {"name": "Li Lei", "phone": "138****8000"}
    assert o["lines"] == [{"sku": "TEA-001", "qty": 2, "unit_price_fen": 12800, "amount_fen": 25600}]
    assert "pickup_code" not in o and code_of(api, oid) not in r.get_data(as_text=True)
    assert api.get("/api/v1/stores/S002/pickup-orders", key=POS_KEYS["S002"]).json["orders"] == []
    assert api.get(f"{BASE}/pickup-orders?status=completed", key=S1).json["orders"] == []
    assert api.get(f"{BASE}/pickup-orders?status=bogus", key=S1).status_code == 422


def test_ready_then_collect_completes_commits_stock_and_feeds_the_erp(api):
    api.stock(10)
    oid = paid_pickup(api)
    r = api.post(f"{BASE}/pickup-orders/{oid}/ready", key=S1)
    assert r.status_code == 200 and r.json["status"] == "ready_for_pickup"
    assert api.get(f"/api/v1/orders/{oid}").json["status"] == "ready_for_pickup"
    r = api.post(f"{BASE}/pickup-orders/{oid}/collect", {"pickup_code": code_of(api, oid)}, key=S1)
    assert r.status_code == 200 and r.json["status"] == "completed"
    level = api.level()
    assert (level.on_hand, level.reserved) == (8, 0)
    timeline = [t["status"] for t in api.get(f"/api/v1/orders/{oid}").json["timeline"]]
    assert timeline[-3:] == ["ready_for_pickup", "collected", "completed"]
    with api.ctx.uow() as uow:
        assert uow.session.execute(select(ErpFeedEntry.order_id)).scalars().all() == [oid]


def test_collect_before_ready_is_409_and_another_stores_order_is_404(api):
    api.stock(10)
    oid = paid_pickup(api)
    r = api.post(f"{BASE}/pickup-orders/{oid}/collect", {"pickup_code": code_of(api, oid)}, key=S1)
    assert r.status_code == 409 and r.json["error"] == "illegal_transition"
    r = api.post(f"/api/v1/stores/S002/pickup-orders/{oid}/ready", key=POS_KEYS["S002"])
    assert r.status_code == 404
    assert api.get(f"/api/v1/orders/{oid}").json["status"] == "allocated"


def test_wrong_codes_count_lock_after_five_and_the_right_code_waits_for_the_lock(api):
    api.stock(10)
    oid = paid_pickup(api)
    api.post(f"{BASE}/pickup-orders/{oid}/ready", key=S1)
    code = code_of(api, oid)
    url = f"{BASE}/pickup-orders/{oid}/collect"
    for left in (4, 3, 2, 1):
        r = api.post(url, {"pickup_code": wrong(code)}, key=S1)
        assert r.status_code == 422 and r.json["attempts_left"] == left, r.json
    with api.ctx.uow() as uow:            # each failed attempt was committed
        assert uow.session.get(OrderRow, oid).pickup_attempts == 4
    r = api.post(url, {"pickup_code": wrong(code)}, key=S1)
    assert r.status_code == 423 and r.json["error"] == "pickup_locked" and r.json["locked_until"]
    r = api.post(url, {"pickup_code": code}, key=S1)
    assert r.status_code == 423
    assert api.level().reserved == 2 and api.get(f"/api/v1/orders/{oid}").json["status"] == "ready_for_pickup"
    api.clock.now += timedelta(minutes=31)
    r = api.post(url, {"pickup_code": code}, key=S1)
    assert r.status_code == 200 and r.json["status"] == "completed"


def test_sale_applies_once_per_receipt_with_lines_merged(api):
    api.stock(10)
    sale = {"receipt_id": "R-1001", "sold_at": "2026-11-25T10:05:00+08:00",
            "lines": [{"sku": "TEA-001", "qty": 1}, {"sku": "CUP-002", "qty": 2}, {"sku": "TEA-001", "qty": 2}]}
    r = api.post(f"{BASE}/sales", sale, key=S1)
    assert r.status_code == 201 and r.json["duplicate"] is False
    assert {x["sku"]: x["on_hand"] for x in r.json["lines"]} == {"TEA-001": 7, "CUP-002": 8}
    again = api.post(f"{BASE}/sales", sale, key=S1)
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert api.level().on_hand == 7 and api.level(sku="CUP-002").on_hand == 8
    assert api.get("/api/v1/stock/TEA-001").json["locations"][0]["available"] == 6
    assert api.deps.metrics.registry.get_sample_value("hub_stock_events_applied_total",
                                                      {"source": "pos", "kind": "delta"}) == 2


def test_a_sale_is_three_statements_on_postgresql(api):
    """Under load each round trip waits a turn of a busy gateway: a till's sale reads its stock rows (locked)
    and its receipt's earlier lines, then writes its ledger rows, stock rows and events in one statement
    (PostgreSQL; SQLite, with no network, writes one statement per table)."""
    api.stock(10)
    sale = {"receipt_id": "R-3001", "sold_at": "2026-11-25T10:05:00+08:00",
            "lines": [{"sku": "TEA-001", "qty": 1}, {"sku": "CUP-002", "qty": 2}]}
    with statements_run(api.ctx.engine) as statements:
        r = api.post(f"{BASE}/sales", sale, key=S1)
    assert r.status_code == 201 and api.level().on_hand == 9 and api.level(sku="CUP-002").on_hand == 8
    writes = [s for s in statements if s.startswith(("insert", "update", "with"))]
    reads = [s for s in statements if s.startswith("select")]
    assert len(reads) == 2 and "stock_levels" in reads[0] and "stock_movements" in reads[1]
    assert len(writes) == (1 if api.ctx.engine.dialect.name == "postgresql" else 3)
    with api.ctx.uow() as uow:
        events = uow.session.execute(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.event_type == "stock.changed")).scalar_one()
        ledger = uow.session.execute(select(func.count()).select_from(StockMovement)
                                     .where(StockMovement.external_id == "R-3001")).scalar_one()
    assert ledger == 2 and events >= 2


@pytest.mark.parametrize("sale,status", [
    ({"receipt_id": "R-2", "sold_at": "2026-11-25T10:05:00+08:00",
      "lines": [{"sku": "TEA-001", "qty": 1}, {"sku": "NOPE", "qty": 1}]}, 422),
    ({"receipt_id": "R-2", "sold_at": "2026-11-25T10:05:00+08:00", "lines": [{"sku": "TEA-001", "qty": -1}]}, 422),
    ({"receipt_id": "R-2", "sold_at": "2026-11-25T10:05:00+08:00", "lines": [{"sku": "TEA-001", "qty": 0}]}, 422),
    ({"receipt_id": "R-2", "sold_at": "2026-11-25T10:05:00", "lines": [{"sku": "TEA-001", "qty": 1}]}, 422),
    ({"receipt_id": "R-2", "sold_at": "yesterday", "lines": [{"sku": "TEA-001", "qty": 1}]}, 422),
    ({"sold_at": "2026-11-25T10:05:00+08:00", "lines": [{"sku": "TEA-001", "qty": 1}]}, 422),
    ({"receipt_id": "R-2", "sold_at": "2026-11-25T10:05:00+08:00", "lines": [{"sku": "TEA-001", "qty": 1}],
      "store": "S002"}, 422),
])
def test_bad_sale_changes_nothing(api, sale, status):
    api.stock(10)
    before = movements(api)
    r = api.post(f"{BASE}/sales", sale, key=S1)
    assert r.status_code == status and r.json["message"]
    assert movements(api) == before and api.level().on_hand == 10


def test_count_sets_on_hand_if_newer_and_bad_counts_change_nothing(api):
    api.stock(10)
    count = {"counted_at": "2026-11-25T09:45:00+08:00", "lines": [{"sku": "TEA-001", "on_hand": 4},
                                                                  {"sku": "CUP-002", "on_hand": 0}]}
    r = api.put(f"{BASE}/stock", count, key=S1)
    assert r.status_code == 200 and [x["on_hand"] for x in r.json["lines"]] == [4, 0]
    assert api.level().on_hand == 4
    older = {"counted_at": "2026-11-25T09:30:00+08:00", "lines": [{"sku": "TEA-001", "on_hand": 50}]}
    r = api.put(f"{BASE}/stock", older, key=S1)
    assert r.status_code == 200 and r.json["lines"][0]["applied"] is False and api.level().on_hand == 4
    before = movements(api)
    for bad in ({"counted_at": "2026-11-25T09:50:00+08:00", "lines": [{"sku": "TEA-001", "on_hand": -1}]},
                {"counted_at": "2026-11-25T09:50:00+08:00", "lines": [{"sku": "TEA-001", "on_hand": 3},
                                                                      {"sku": "NOPE", "on_hand": 3}]},
                {"counted_at": "2026-11-25T09:50:00+08:00", "lines": [{"sku": "TEA-001", "on_hand": 3},
                                                                      {"sku": "TEA-001", "on_hand": 2}]},
                {"lines": [{"sku": "TEA-001", "on_hand": 3}]}):
        assert api.put(f"{BASE}/stock", bad, key=S1).status_code == 422
    assert movements(api) == before and api.level().on_hand == 4


def test_a_sale_while_the_database_is_away_is_a_503_to_retry_and_applies_once_after(api):
    from tests.conftest import PG_URL
    from tests.faults import database_down

    if api.ctx.engine.dialect.name != "postgresql":
        pytest.skip("the outage is made on PostgreSQL (SQLite has no server to refuse connections)")
    api.stock(10)
    sale = {"receipt_id": "R-OUTAGE-1", "sold_at": "2026-11-25T10:05:00+08:00", "lines": [{"sku": "TEA-001", "qty": 3}]}
    with database_down(PG_URL):
        r = api.post(f"{BASE}/sales", sale, key=S1)
    assert r.status_code == 503 and r.json["error"] == "database_unavailable" and r.headers["Retry-After"] == "1"
    assert api.post(f"{BASE}/sales", sale, key=S1).status_code == 201          # the till's retry
    assert api.post(f"{BASE}/sales", sale, key=S1).json["duplicate"] is True
    assert api.level().on_hand == 7


def test_pos_inventory_webhook_reaches_the_ledger_once(api):
    # The POS connector's webhook parser had no route; the simulator's webhook now lands in the ledger.
    from hub.storage.bindings import SqlBinder
    from sandbox import pos as pos_sim
    pos_sim.seed_binder(SqlBinder(api.ctx.session_factory), ["TEA-001"])
    api.stock(10)
    sim = pos_sim.PosSimulator(api_key="unused")
    api.clock.now = datetime.now(UTC)          # the simulator dates its changes by the real clock
    payload = {"changes": [sim.adjustment("TEA-001", 2, "S001", change_id="ADJ-1")]}
    path = "/api/v1/stores/S001/inventory-changes"
    first = api.post(path, payload, key=POS_KEYS["S001"])
    again = api.post(path, payload, key=POS_KEYS["S001"])
    assert first.status_code == 200 and first.json["changes"][0]["applied"] is True
    assert again.status_code == 200 and again.json["changes"][0]["duplicate"] is True
    assert api.level().on_hand == 8
    bad = {"changes": [sim.adjustment("TEA-001", 1, "S002", change_id="ADJ-2")]}   # another store's change
    assert api.post(path, bad, key=POS_KEYS["S001"]).status_code == 422
    assert api.post(path, payload, key=POS_KEYS["S002"]).status_code == 403     # another store's key
    assert api.level().on_hand == 8


# -- a store return after collection ------------------------------------------------------------

def refund_events(api, oid: str) -> list[dict]:
    with api.ctx.uow() as uow:
        rows = uow.session.execute(select(OutboxMessage.payload)
                                   .where(OutboxMessage.event_type == "order.refund_due")).scalars().all()
    return [r["data"] for r in rows if r["data"]["order_id"] == oid]


def collected(api, key="k1") -> str:
    oid = paid_pickup(api, key)
    api.post(f"{BASE}/pickup-orders/{oid}/ready", key=S1)
    r = api.post(f"{BASE}/pickup-orders/{oid}/collect", {"pickup_code": code_of(api, oid)}, key=S1)
    assert r.status_code == 200
    return oid


def test_goods_handed_back_return_to_the_stores_stock_once_with_the_refund_due(api):
    api.stock(10)
    oid = collected(api)
    assert (api.level().on_hand, api.level().reserved) == (8, 0)
    r = api.post(f"{BASE}/pickup-orders/{oid}/return", {"reason": "wrong size"}, key=S1)
    assert r.status_code == 200 and r.json == {"order_id": oid, "status": "returned"}
    assert (api.level().on_hand, api.level().reserved) == (10, 0)
    [due] = refund_events(api, oid)
    assert due["payment_ref"] == "tx-k1" and "wrong size" in due["reason"] and "S001" in due["reason"]
    before = movements(api)
    again = api.post(f"{BASE}/pickup-orders/{oid}/return", {"reason": "wrong size"}, key=S1)   # the till retries
    assert again.status_code == 200 and again.json["status"] == "returned"
    assert movements(api) == before and api.level().on_hand == 10 and len(refund_events(api, oid)) == 1
    assert api.get(f"/api/v1/orders/{oid}").json["status"] == "returned"
    listed = api.get(f"{BASE}/pickup-orders?status=returned", key=S1).json["orders"]
    assert [o["order_id"] for o in listed] == [oid]


def test_bad_store_returns_are_refused_and_change_nothing(api):
    api.stock(10)
    oid = collected(api)
    uncollected = paid_pickup(api, "k2")
    before = movements(api)
    cases = [
        (api.post(f"{BASE}/pickup-orders/{oid}/return", {}, key=S1), 422),                     # no reason
        (api.post(f"{BASE}/pickup-orders/{oid}/return", {"reason": 7}, key=S1), 422),
        (api.call("POST", f"{BASE}/pickup-orders/{oid}/return", key=S1, data=b"{not json",
                  headers={"Content-Type": "application/json"}), 400),
        (api.post(f"{BASE}/pickup-orders/O-NOPE/return", {"reason": "x"}, key=S1), 404),
        (api.post(f"/api/v1/stores/S002/pickup-orders/{oid}/return", {"reason": "x"}, key=POS_KEYS["S002"]), 404),
        (api.post(f"/api/v1/stores/S001/pickup-orders/{oid}/return", {"reason": "x"}, key=POS_KEYS["S002"]), 403),
        (api.post(f"{BASE}/pickup-orders/{uncollected}/return", {"reason": "x"}, key=S1), 409),   # never left
    ]
    assert [r.status_code for r, _ in cases] == [want for _, want in cases], [r.json for r, _ in cases]
    assert movements(api) == before and refund_events(api, oid) == [] and refund_events(api, uncollected) == []
    assert api.get(f"/api/v1/orders/{oid}").json["status"] == "completed"

"""Batched till uploads: `{receipts: [...]}` applied in one transaction, each receipt once, answered
per receipt; one stock event per SKU and location per transaction."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from hub.domain.model import StockDelta
from hub.services import inventory
from hub.storage.tables import OutboxMessage, StockMovement
from tests.conftest import PG_URL
from tests.support import at

from .conftest import POS_KEYS

S1 = POS_KEYS["S001"]
SALES = "/api/v1/stores/S001/sales"


def receipt(rid: str, *lines: tuple[str, int], minutes: float = 0) -> dict:
    return {"receipt_id": rid, "sold_at": at(minutes).isoformat(), "lines": [{"sku": s, "qty": q} for s, q in lines]}


def stock_events(api) -> int:
    with api.ctx.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(OutboxMessage)
                                   .where(OutboxMessage.event_type == "stock.changed")).scalar_one()


def test_a_batch_is_answered_per_receipt(api):
    api.stock(50, locations=("S001",))
    assert api.post(SALES, receipt("R-1", ("TEA-001", 1)), key=S1).status_code == 201
    events_before = stock_events(api)
    batch = {"receipts": [
        receipt("R-1", ("TEA-001", 1)),                                  # already sent alone
        receipt("R-2", ("TEA-001", 2), ("CUP-002", 1)),
        receipt("R-3", ("NOPE-9", 1), ("TEA-001", 1)),                   # unknown SKU: refused, alone
        receipt("R-4", ("TEA-001", 3), minutes=30),                      # the till's clock is ahead
        receipt("R-5", ("TEA-001", 1), ("TEA-001", 1)),
        receipt("R-2", ("TEA-001", 2), ("CUP-002", 1)),                  # twice in the batch
    ]}
    r = api.post(SALES, batch, key=S1)
    assert r.status_code == 200, r.json
    statuses = [(x["receipt_id"], x["status"]) for x in r.json["receipts"]]
    assert statuses == [("R-1", "duplicate"), ("R-2", "applied"), ("R-3", "refused"), ("R-4", "refused"),
                        ("R-5", "applied"), ("R-2", "duplicate")]
    assert "NOPE-9" in r.json["receipts"][2]["reason"] and "ahead" in r.json["receipts"][3]["reason"]
    assert (r.json["applied"], r.json["duplicate"], r.json["refused"]) == (2, 2, 2)
    assert api.level().on_hand == 50 - 1 - 2 - 2 and api.level(sku="CUP-002").on_hand == 49
    # One event per SKU and location for the whole batch, not one per receipt line.
    assert stock_events(api) - events_before == 2
    again = api.post(SALES, batch, key=S1).json
    assert again["applied"] == 0 and api.level().on_hand == 45
    assert api.deps.metrics.registry.get_sample_value(
        "hub_stock_events_applied_total", {"source": "pos", "kind": "delta"}) == 1 + 3


def test_a_sale_older_than_the_last_count_is_recorded_not_applied(api):
    api.stock(10, locations=("S001",))                                 # counted at -60 min
    r = api.post(SALES, {"receipts": [receipt("OLD", ("TEA-001", 4), minutes=-90)]}, key=S1).json
    assert r["receipts"][0]["status"] == "applied"
    assert r["receipts"][0]["lines"][0]["applied"] is False and api.level().on_hand == 10
    with api.ctx.uow() as uow:
        row = uow.session.execute(select(StockMovement).where(StockMovement.external_id == "OLD")).scalar_one()
        assert (row.applied, row.qty) == (False, -4)


@pytest.mark.parametrize("body", [
    {"receipts": []},
    {"receipts": "R-1"},
    {"receipts": [receipt(f"R{i}", ("TEA-001", 1)) for i in range(501)]},
    {"receipts": [{"receipt_id": "R-1", "lines": [{"sku": "TEA-001", "qty": 1}]}]},
    {"receipts": [receipt("R-1", ("TEA-001", -1))]},
    {"receipts": [receipt("R-1", ("TEA-001", 1))], "extra": 1},
])
def test_a_malformed_batch_is_422_and_changes_nothing(api, body):
    api.stock(10, locations=("S001",))
    r = api.post(SALES, body, key=S1)
    assert r.status_code == 422, r.json
    assert api.level().on_hand == 10


def test_another_stores_key_cannot_send_a_batch(api):
    r = api.post(SALES, {"receipts": [receipt("R-1", ("TEA-001", 1))]}, key=POS_KEYS["S002"])
    assert r.status_code == 403


def test_openapi_documents_the_batch(api):
    doc = api.get("/openapi.json", key=None).json
    body = doc["paths"]["/api/v1/stores/{store_id}/sales"]["post"]["requestBody"]["content"]["application/json"]
    shapes = body["schema"]["oneOf"]
    assert any("receipts" in s["properties"] for s in shapes) and any("receipt_id" in s["properties"] for s in shapes)


def test_one_stock_event_per_sku_and_location_per_transaction(ctx):
    """Two deltas of one SKU at one store in one unit of work: one stock.changed, not two."""
    with ctx.uow() as uow:
        inventory.apply_delta(uow, StockDelta("test", "a", "TEA-001", "S001", 5, at(0), "receipt"))
        inventory.apply_delta(uow, StockDelta("test", "b", "TEA-001", "S001", -1, at(1), "sale"))
        inventory.apply_delta(uow, StockDelta("test", "c", "CUP-002", "S001", 2, at(1), "receipt"))
        uow.commit()
    with ctx.uow() as uow:
        events = uow.session.execute(select(OutboxMessage.payload)
                                     .where(OutboxMessage.event_type == "stock.changed")).scalars().all()
    assert sorted(e["data"]["sku"] for e in events) == ["CUP-002", "TEA-001"]


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (HUB_TEST_DATABASE_URL)")
@pytest.mark.parametrize("api", ["postgresql"], indirect=True)
def test_concurrent_batches_over_the_same_skus_neither_deadlock_nor_double(api):
    """8 tills send overlapping batches (SKUs in opposite orders) at once, each twice."""
    api.stock(10_000, locations=("S001",))
    start = threading.Barrier(8)

    def till(n: int) -> list[int]:
        lines = [("TEA-001", 1), ("CUP-002", 1)] if n % 2 else [("CUP-002", 1), ("TEA-001", 1)]
        batch = {"receipts": [receipt(f"T{n}-{i}", *lines) for i in range(50)]}
        start.wait()
        return [api.post(SALES, batch, key=S1).status_code for _ in range(2)]

    with ThreadPoolExecutor(8) as pool:
        codes = [c for batch in pool.map(till, range(8)) for c in batch]
    assert codes == [200] * 16
    assert api.level().on_hand == 10_000 - 400 and api.level(sku="CUP-002").on_hand == 10_000 - 400

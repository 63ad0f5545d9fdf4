"""The store's picking API over the store key: its order list, picking and picked (bad input refused with
nothing changed), and pause / capacity refusing orders in routing with the reason."""
from __future__ import annotations

from datetime import datetime, timedelta

from tests.api.conftest import ADDRESS, BUYER, POS_KEYS, order_body

BASE = "/api/v1/stores/S001"


def paid_two_lines(api, key: str = "k1") -> str:
    api.stock()
    body = {"lines": [{"sku": "TEA-001", "qty": 2}, {"sku": "CUP-002", "qty": 1}], "buyer": BUYER,
            "fulfillment": {"type": "pickup", "store_id": "S001"}, "note": "no bag, please"}
    r = api.post("/api/v1/orders", body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.json
    api.pay(r.json["order_id"])
    return r.json["order_id"]


def test_the_store_lists_its_order_picks_it_and_the_same_pick_twice_is_the_same_answer(api):
    oid = paid_two_lines(api)
    [listed] = api.get(f"{BASE}/orders", key=POS_KEYS["S001"]).json["orders"]
    assert (listed["order_id"], listed["status"], listed["note"]) == (oid, "allocated", "no bag, please")
    # one promise: what the store's list shows is what the buyer's order view says (30 minutes after payment)
    view = api.get(f"/api/v1/orders/{oid}").json
    assert listed["promised_at"] == view["promised_at"] is not None
    promise = datetime.fromisoformat(view["promised_at"]) - datetime.fromisoformat(view["paid_at"])
    assert promise == timedelta(minutes=30)
    assert {x["sku"]: x["qty_picked"] for x in listed["lines"]} == {"TEA-001": None, "CUP-002": None}
    r = api.post(f"{BASE}/orders/{oid}/picking", {"staff": "Wang"}, key=POS_KEYS["S001"])
    assert r.status_code == 200 and r.json["status"] == "picking"
    assert api.post(f"{BASE}/orders/{oid}/picking", {}, key=POS_KEYS["S001"]).json["status"] == "picking"
    pick = {"lines": [{"sku": "CUP-002", "qty_picked": 0}], "staff": "Wang"}
    first = api.post(f"{BASE}/orders/{oid}/picked", pick, key=POS_KEYS["S001"])
    assert first.status_code == 200 and first.json["status"] == "ready_for_pickup"
    assert first.json["picked_by"] == "S001/Wang"
    second = api.post(f"{BASE}/orders/{oid}/picked", pick, key=POS_KEYS["S001"])
    assert second.status_code == 200 and second.json == first.json
    other = api.post(f"{BASE}/orders/{oid}/picked", {"lines": []}, key=POS_KEYS["S001"])
    assert other.status_code == 409 and other.json["error"] == "already_picked"
    [refund] = api.get(f"/api/v1/orders/{oid}").json["refunds"]
    assert refund["amount_fen"] == 4500                 # the missing cup's line, once


def test_bad_picks_are_refused_and_change_nothing(api):
    oid = paid_two_lines(api)
    before = (api.level("S001", "TEA-001"), api.level("S001", "CUP-002"))
    for lines, status in (([{"sku": "TEA-001", "qty_picked": 3}], 422), ([{"sku": "TEA-001", "qty_picked": -1}], 422),
                          ([{"sku": "MUG-005", "qty_picked": 1}], 422),
                          ([{"sku": "CUP-002", "qty_picked": 0}, {"sku": "TEA-001", "qty_picked": 5}], 422)):
        r = api.post(f"{BASE}/orders/{oid}/picked", {"lines": lines}, key=POS_KEYS["S001"])
        assert r.status_code == status, (lines, r.json)
    assert api.get(f"/api/v1/orders/{oid}").json["status"] == "allocated"
    assert (api.level("S001", "TEA-001"), api.level("S001", "CUP-002")) == before
    r = api.post(f"/api/v1/stores/S002/orders/{oid}/picked", {"lines": []}, key=POS_KEYS["S002"])
    assert r.status_code == 403
    assert api.post(f"/api/v1/orders/{oid}/cancel", {}).status_code == 200
    r = api.post(f"{BASE}/orders/{oid}/picked", {"lines": []}, key=POS_KEYS["S001"])
    assert r.status_code == 409 and r.json["status"] == "cancelled"


def test_a_paused_store_is_skipped_with_the_reason_and_a_full_one_too(api):
    api.stock()
    r = api.post("/api/v1/stores/S001/pause", {"paused": True, "reason": "busy"}, key=POS_KEYS["S001"])
    assert r.status_code == 200 and r.json["paused"] and r.json["reason"] == "busy"
    assert api.get("/api/v1/stores/S001/status", key=POS_KEYS["S001"]).json["paused"] is True
    r = api.post("/api/v1/orders", order_body(), headers={"Idempotency-Key": "p1"})
    assert r.status_code == 409 and "paused by the store (busy)" in r.json["reasons"][0]["reason"]
    body = {**order_body("delivery"), "fulfillment": {"type": "delivery", "address": ADDRESS}}
    r = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "d1"})
    assert r.status_code == 201 and r.json["fulfillment"]["location_id"] != "S001"
    routing = api.get(f"/api/v1/orders/{r.json['order_id']}").json["routing"]
    assert any(c["location_id"] == "S001" and "paused" in c["reason"] for c in routing["candidates"])
    r = api.post("/api/v1/stores/S001/pause", {"paused": False}, key=POS_KEYS["S001"])
    assert r.json["paused"] is False
    assert api.post("/api/v1/orders", order_body(), headers={"Idempotency-Key": "p2"}).status_code == 201
    r = api.post("/api/v1/stores/S001/pause", {"paused": True, "until": "2000-01-01T00:00:00+08:00"},
                 key=POS_KEYS["S001"])
    assert r.status_code == 422

"""The mini-program: stock per store, nearby stores, placing, paying, cancelling, reading orders."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from hub.storage.tables import OrderRow, Reservation

from .conftest import ADDRESS, BUYER, order_body


def orders_count(api) -> int:
    with api.ctx.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(OrderRow)).scalar_one()


def reserved_total(api) -> int:
    with api.ctx.uow() as uow:
        return uow.session.execute(select(func.coalesce(func.sum(Reservation.qty), 0))
                                   .where(Reservation.status == "open")).scalar_one()


def test_stock_is_what_the_channel_may_sell(api):
    api.stock(10, locations=("S001", "WH01"))
    r = api.get("/api/v1/stock/TEA-001")
    assert r.status_code == 200
    by_loc = {x["location_id"]: x for x in r.json["locations"]}
    # the channel holds back 1 per location (its safety stock); S003 also holds 1 of its own
    assert by_loc["S001"]["available"] == 9 and by_loc["WH01"]["available"] == 9
    assert by_loc["S002"]["available"] == 0 and by_loc["S001"]["kind"] == "store"
    assert r.json["available"] == 18 and "distance_km" not in by_loc["S001"]


def test_stock_with_a_position_flags_pickup_and_delivery(api):
    api.stock(10, locations=("S001", "S003"))
    r = api.get("/api/v1/stock/TEA-001?lat=31.2250&lng=121.4450")
    stores = [x for x in r.json["locations"] if x["kind"] == "store"]
    assert [s["location_id"] for s in stores][0] == "S001"          # nearest first
    s1, s2, s3 = (next(s for s in stores if s["location_id"] == i) for i in ("S001", "S002", "S003"))
    assert s1["pickup"] and s1["delivery"] and s1["distance_km"] < 1
    assert not s2["pickup"] and not s2["delivery"]                    # holds nothing
    assert not s3["pickup"] and not s3["delivery"]                    # no pickup there, and 5 km > its 3 km radius


def test_stock_of_unknown_sku_is_404_and_bad_position_422(api):
    assert api.get("/api/v1/stock/NOPE").status_code == 404
    r = api.get("/api/v1/stock/TEA-001?lat=91&lng=121")
    assert r.status_code == 422 and r.json["field"] == "lat"
    assert api.get("/api/v1/stock/TEA-001?lat=31.2").status_code == 422


def test_nearby_stores_that_can_serve_nearest_first(api):
    api.stock(5, locations=("S001", "S002"))
    r = api.get("/api/v1/stores/nearby?lat=31.2000&lng=121.4380&sku=TEA-001&qty=2")
    assert r.status_code == 200
    assert [s["store_id"] for s in r.json["stores"]] == ["S002", "S001"]
    assert r.json["stores"][0]["available"] == 4
    assert api.get("/api/v1/stores/nearby?lat=31.2&lng=121.438&sku=TEA-001&qty=5").json["stores"] == []
    assert api.get("/api/v1/stores/nearby?sku=TEA-001").status_code == 422


def test_place_pickup_order_reserves_at_the_store_with_master_prices(api):
    api.stock(10)
    r = api.post("/api/v1/orders", order_body(qty=2), headers={"Idempotency-Key": "k1"})
    assert r.status_code == 201, r.json
    assert r.json["status"] == "pending_payment" and r.json["total_fen"] == 2 * 12800
    assert r.json["fulfillment"] == {"type": "pickup", "requested": "pickup", "store_id": "S001",
                                     "location_id": "S001"}
    assert r.headers["Location"] == f"/api/v1/orders/{r.json['order_id']}"
    assert api.level().reserved == 2
    assert api.deps.metrics.registry.get_sample_value("hub_orders_placed_total", {"fulfillment": "pickup"}) == 1


def test_same_idempotency_key_gives_the_same_order(api):
    api.stock(10)
    first = api.post("/api/v1/orders", order_body(), headers={"Idempotency-Key": "k1"})
    again = api.post("/api/v1/orders", order_body(), headers={"Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json and orders_count(api) == 1 and api.level().reserved == 2
    reused = api.post("/api/v1/orders", order_body(qty=3), headers={"Idempotency-Key": "k1"})
    assert reused.status_code == 422 and reused.json["error"] == "idempotency_conflict"
    assert api.level().reserved == 2


def test_concurrent_requests_with_one_key_make_one_order(api):
    api.stock(10)
    answers: list[tuple[int, str]] = []
    barrier = threading.Barrier(6)

    def go():
        barrier.wait()
        r = api.post("/api/v1/orders", order_body(), headers={"Idempotency-Key": "same"})
        answers.append((r.status_code, r.json.get("order_id")))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in answers) == [200] * 5 + [201], answers
    assert len({o for _, o in answers}) == 1
    assert orders_count(api) == 1 and api.level().reserved == 2


def test_insufficient_stock_is_409_with_short_lines_and_nothing_reserved(api):
    api.stock(3, skus=("TEA-001",))
    body = order_body(qty=2)
    body["lines"].append({"sku": "CUP-002", "qty": 1})
    r = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 409 and r.json["error"] == "insufficient_stock"
    assert r.json["short"] == [{"sku": "CUP-002", "location_id": "S001", "wanted": 1, "available": 0}]
    assert reserved_total(api) == 0 and orders_count(api) == 0


def test_no_route_is_409_with_reasons(api):
    api.stock(10, locations=("S003",))
    r = api.post("/api/v1/orders", order_body(store="S003"), headers={"Idempotency-Key": "k1"})
    assert r.status_code == 409 and r.json["error"] == "no_route" and r.json["reasons"][0]["location_id"] == "S003"
    r = api.post("/api/v1/orders", order_body(kind="express"), headers={"Idempotency-Key": "k2"})
    assert r.status_code == 409 and r.json["error"] in ("no_route", "insufficient_stock")
    assert orders_count(api) == 0


def _with(body, path, value):
    *head, last = path
    node = body
    for p in head:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return body


@pytest.mark.parametrize("mutate,field", [
    (lambda b: _with(b, ("lines", 0, "qty"), 0), "lines[0].qty"),
    (lambda b: _with(b, ("lines", 0, "qty"), -1), "lines[0].qty"),
    (lambda b: _with(b, ("lines", 0, "qty"), 1.5), "lines[0].qty"),
    (lambda b: _with(b, ("lines", 0, "qty"), "2"), "lines[0].qty"),
    (lambda b: _with(b, ("lines", 0, "qty"), True), "lines[0].qty"),
    (lambda b: _with(b, ("lines", 0, "sku"), "NOPE"), "lines[0].sku"),
    (lambda b: _with(b, ("lines",), []), "lines"),
    (lambda b: _with(b, ("buyer",), KeyError), "buyer"),
    (lambda b: _with(b, ("lines", 0, "unit_price_fen"), 1), "lines[0].unit_price_fen"),
    (lambda b: _with(b, ("total_fen",), 1), "total_fen"),
    (lambda b: _with(b, ("fulfillment", "type"), "drone"), "fulfillment.type"),
    (lambda b: _with(b, ("fulfillment", "address"), {**ADDRESS, "lat": "north"}), "fulfillment.address.lat"),
])
def test_invalid_order_is_422_naming_the_field_and_changes_nothing(api, mutate, field):
    api.stock(10)
    r = api.post("/api/v1/orders", mutate(order_body()), headers={"Idempotency-Key": "k1"})
    assert r.status_code == 422, r.json
    assert r.json["field"] == field and r.json["message"]
    assert orders_count(api) == 0 and reserved_total(api) == 0


def test_malformed_body_and_missing_key_are_400(api):
    api.stock(10)
    r = api.post("/api/v1/orders", data=b"{not json", headers={"Idempotency-Key": "k1",
                                                                "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["error"] == "malformed_json"
    assert api.post("/api/v1/orders", [1, 2], headers={"Idempotency-Key": "k1"}).status_code == 400
    r = api.post("/api/v1/orders", order_body())
    assert r.status_code == 400 and r.json["error"] == "idempotency_key_required"
    pickup_without_store = order_body()
    del pickup_without_store["fulfillment"]["store_id"]
    assert api.post("/api/v1/orders", pickup_without_store, headers={"Idempotency-Key": "k9"}).status_code == 422
    assert orders_count(api) == 0


def test_delivery_order_is_routed_to_the_nearest_store(api):
    api.stock(10)
    r = api.post("/api/v1/orders", order_body(kind="delivery"), headers={"Idempotency-Key": "d1"})
    assert r.status_code == 201 and r.json["fulfillment"]["store_id"] == "S001"
    got = api.get(f"/api/v1/orders/{r.json['order_id']}").json
    assert got["routing"]["location_id"] == "S001" and got["pickup_code"] is None
    assert {c["location_id"] for c in got["routing"]["candidates"]} >= {"S001", "S002", "S003"}


def test_pay_then_read_the_order_with_its_timeline(api):
    api.stock(10)
    oid = api.order()
    r = api.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-9", "amount_fen": 25600})
    assert r.status_code == 200 and r.json["status"] == "allocated"
    again = api.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-9"})
    assert again.status_code == 200 and again.json["status"] == "allocated"
    got = api.get(f"/api/v1/orders/{oid}")
    assert got.status_code == 200
    o = got.json
    assert o["order_id"] == oid and o["status"] == "allocated" and len(o["pickup_code"]) == 6
    assert o["lines"] == [{"sku": "TEA-001", "qty": 2, "unit_price_fen": 12800, "amount_fen": 25600}]
    assert o["total_fen"] == 25600
    assert [t["status"] for t in o["timeline"]] == ["pending_payment", "paid", "allocated"]
    assert all(t["at"].endswith("+08:00") for t in o["timeline"])
    assert o["created_at"] == "2026-11-25T10:00:00+08:00"


def test_wrong_amount_is_refused_and_changes_nothing(api):
    api.stock(10)
    oid = api.order()
    r = api.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-1", "amount_fen": 1})
    assert r.status_code == 422
    assert api.get(f"/api/v1/orders/{oid}").json["status"] == "pending_payment"
    assert api.post(f"/api/v1/orders/{oid}/pay", {"amount_fen": 25600}).status_code == 422   # no payment_ref


def test_cancel_releases_the_stock_and_money_paid_after_it_is_owed_back(api):
    api.stock(10)
    oid = api.order()
    r = api.post(f"/api/v1/orders/{oid}/cancel", {"reason": "changed my mind"})
    assert r.status_code == 200 and r.json["status"] == "cancelled" and api.level().reserved == 0
    assert api.post(f"/api/v1/orders/{oid}/cancel").json["status"] == "cancelled"   # again: no change
    # Paid after the cancel: the order is not revived and not "refunded" before any money went back —
    # it stays cancelled with a refund of that payment requested.
    r = api.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-late"})
    assert r.status_code == 200 and r.json["status"] == "cancelled"
    assert api.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-late"}).status_code == 200   # again: once
    # A second, different payment is not refused and forgotten: it is owed back too.
    r = api.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-other"})
    assert r.status_code == 200 and r.json["status"] == "cancelled"
    order = api.get(f"/api/v1/orders/{oid}").json
    assert order["status"] == "cancelled" and api.level().reserved == 0
    assert [(x["payment_ref"], x["amount_fen"], x["status"], x["cause"]) for x in order["refunds"]] == [
        ("tx-late", order["total_fen"], "requested", "paid_late"),
        ("tx-other", order["total_fen"], "requested", "paid_twice")]
    assert all(x["refund_id"].startswith(f"R{oid}-") and x["at"] for x in order["refunds"])


def test_a_second_different_payment_for_a_paid_order_is_owed_back_not_refused(api):
    api.stock(10)
    oid = api.order()
    api.pay(oid, "tx-first")
    r = api.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-second"})
    assert r.status_code == 200 and r.json["status"] == "allocated"        # the order goes on with its payment
    again = api.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-second"})   # reported again: once
    assert again.status_code == 200
    order = api.get(f"/api/v1/orders/{oid}").json
    assert [(x["payment_ref"], x["amount_fen"], x["status"], x["cause"]) for x in order["refunds"]] == [
        ("tx-second", order["total_fen"], "requested", "paid_twice")]
    assert order["status"] == "allocated" and api.level().reserved == 2


def test_a_channel_sees_only_its_own_orders(api):
    with api.ctx.uow() as uow:
        uow.session.add(OrderRow(id="OTHER1", channel="other_shop", idempotency_key="x", request_hash="-",
                                 status="pending_payment", fulfillment_type="pickup", buyer=BUYER))
        uow.commit()
    for r in (api.get("/api/v1/orders/OTHER1"), api.post("/api/v1/orders/OTHER1/cancel"),
              api.post("/api/v1/orders/OTHER1/pay", {"payment_ref": "t"}), api.get("/api/v1/orders/NOPE")):
        assert r.status_code == 404 and r.json["error"] == "not_found"
    with api.ctx.uow() as uow:
        assert uow.session.get(OrderRow, "OTHER1").status == "pending_payment"

"""Meituan 闪购-style channel connector against its simulator: signed calls, batch stock, order detail,
the order-list pull, accept / pick complete / the platform's rider, and signed pushes."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import MappingError, MemoryBinder, PermanentError, SignatureError, TransientError
from connectors.meituan import sign
from hub.domain.model import FulfillmentType
from sandbox.meituan import POI_CODES, MeituanSimulator, platform_sku, seed_binder
from tests.connectors.conftest import simulator

SKUS = ["SKU-A", "SKU-B"]
sim = simulator(MeituanSimulator)


@pytest.fixture
def mt(make_connector, sim):
    return make_connector("meituan", sim, binder=seed_binder(MemoryBinder(), SKUS), timeout=1.0)


def test_signature_is_md5_of_url_sorted_params_and_secret():
    assert sign("https://waimaiopen.meituan.com/api/v1/order/confirm",
                {"timestamp": "1", "app_id": "7", "order_id": "9", "sig": "x"}, "s") == \
        __import__("hashlib").md5(b"https://waimaiopen.meituan.com/api/v1/order/confirm"
                                  b"?app_id=7&order_id=9&timestamp=1s").hexdigest()


def test_batch_stock_per_store_under_the_platforms_ids(sim, mt):
    mt.update_store_stocks("S001", [("SKU-A", 7), ("SKU-B", -1)])
    mt.update_store_stock("SKU-A", "S002", 3)
    assert sim.stock_of("SKU-A", "S001") == 7 and sim.stock_of("SKU-B", "S001") == 0
    assert sim.stock_of("SKU-A", "S002") == 3
    assert sim.stock_calls[0]["app_poi_code"] == POI_CODES["S001"] and len(sim.stock_calls[0]["food_data"]) == 2
    assert mt.get_store_stock("SKU-A", "S001") == 7
    [req] = sim.requests_to("/api/v1/retail/sku/stock")[:1]
    assert set(req.query) == {"app_id", "timestamp", "sig"}        # system params in the query, signed


def test_a_wrong_secret_is_refused_permanently(sim, make_connector):
    mt = make_connector("meituan", sim, binder=seed_binder(MemoryBinder(), SKUS), app_secret="wrong")
    with pytest.raises(PermanentError, match="703"):
        mt.update_store_stock("SKU-A", "S001", 1)
    assert len(sim.requests_to("/api/v1/retail/sku/stock")) == 1 and sim.stock_of("SKU-A", "S001") is None


def test_busy_platform_is_retried(sim, mt):
    sim.faults.only_paths = ("/api/v1/retail/sku/stock",)
    sim.faults.fail_next, sim.faults.error_status = 2, 200
    sim.faults.error_body = {"data": "ng", "error": {"code": 711, "msg": "系统繁忙"}}
    mt.update_store_stock("SKU-A", "S001", 4)
    assert sim.stock_of("SKU-A", "S001") == 4 and len(sim.requests_to("/api/v1/retail/sku/stock")) == 3
    sim.faults.fail_next = 99
    with pytest.raises(TransientError, match="711"):
        mt.update_store_stock("SKU-A", "S001", 5)


def test_unbound_store_never_leaves_the_hub(sim, mt):
    with pytest.raises(MappingError, match="unmapped store"):
        mt.update_store_stock("SKU-A", "S999", 1)
    assert sim.requests_to("/api/v1/retail/sku/stock") == []


def test_order_detail_maps_lines_store_status_and_yuan(sim, mt):
    sim.seed_order("27001", [("SKU-A", 2, 1990), ("SKU-B", 1, 500)], "S002", status=2)
    order = mt.get_order("27001")
    assert (order.channel, order.idempotency_key, order.status) == ("meituan", "meituan:27001", "paid")
    assert [(ln.sku, ln.qty, ln.unit_price_fen) for ln in order.lines] == [("SKU-A", 2, 1990), ("SKU-B", 1, 500)]
    assert order.total_fen == 4480 and order.fulfillment.store_id == "S002"
    assert order.fulfillment.type is FulfillmentType.DELIVERY and order.fulfillment.address.lat == pytest.approx(31.225)


@pytest.mark.parametrize("code,status", [(1, "pending_payment"), (4, "paid"), (6, "shipped"), (8, "completed"),
                                         (9, "cancelled")])
def test_status_codes_are_the_mappings(sim, mt, code, status):
    sim.seed_order("27002", [("SKU-A", 1, 100)], status=code)
    assert mt.get_order("27002").status == status


def test_unknown_status_and_unknown_order(sim, mt):
    sim.seed_order("27003", [("SKU-A", 1, 100)], status=42)
    with pytest.raises(MappingError, match="unknown status code"):
        mt.get_order("27003")
    with pytest.raises(PermanentError, match="808"):
        mt.get_order("404404")


def test_order_list_pages_by_cursor(sim, mt):
    t = int(time.time())
    for i in range(5):
        sim.seed_order(f"2710{i}", [("SKU-A", 1, 100)], "S001", at=t - 10 + i)
    sim.seed_order("27200", [("SKU-A", 1, 100)], "S002", at=t - 5)
    since, until = datetime.fromtimestamp(t - 60, UTC), datetime.fromtimestamp(t + 1, UTC)
    found, cursor = [], ""
    while True:
        ids, cursor = mt.store_changed_orders("S001", since, until, cursor)
        found += ids
        if not cursor:
            break
    assert found == [f"2710{i}" for i in range(5)]
    assert mt.store_changed_orders("S001", since + timedelta(hours=1), until + timedelta(hours=1)) == ([], "")


def test_confirm_pick_and_rider_in_the_platforms_order(sim, mt):
    sim.seed_order("27300", [("SKU-A", 1, 100)], status=2)
    with pytest.raises(PermanentError, match="806"):          # not confirmed yet: no pick complete
        mt.mark_picked("27300")
    mt.confirm_order("27300")
    mt.confirm_order("27300")                                 # repeated: ok, once
    mt.mark_picked("27300")
    mt.call_platform_rider("27300")
    assert sim.calls == [("confirm", "27300"), ("picked", "27300"), ("logistics_push", "27300")]
    assert sim.orders["27300"]["status"] == 4


def test_push_is_verified_over_the_push_address(sim, mt):
    sim.seed_order("27400", [("SKU-A", 1, 100)], status=2)
    params = sim.push_params(mt.push_url, "27400")
    body = "&".join(f"{k}={v}" for k, v in params.items()).encode()
    push = mt.parse_push({}, body)
    assert (push["kind"], push["external_order_id"]) == ("order_changed", "27400")
    with pytest.raises(SignatureError, match="bad signature"):        # signed for another address
        mt.parse_push({}, "&".join(f"{k}={v}" for k, v in sim.push_params("http://elsewhere/cb", "27400").items())
                      .encode())
    tampered = {**params, "order_id": "27401"}
    with pytest.raises(SignatureError, match="bad signature"):
        mt.parse_push(tampered, b"")
    with pytest.raises(SignatureError, match="missing"):
        mt.parse_push({"order_id": "1"}, b"")


def test_stale_push_refused(sim, mt):
    params = sim.push_params(mt.push_url, "27500")
    params["timestamp"] = str(int(time.time()) - 3600)
    params["sig"] = sign(mt.push_url, params, "sandbox-meituan-secret")
    with pytest.raises(SignatureError, match="stale"):
        mt.parse_push(params, b"")


def test_sandbox_ids_differ_from_the_hubs():
    assert platform_sku("SKU-A") != "SKU-A" and POI_CODES["S001"] != "S001"

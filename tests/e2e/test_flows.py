"""The three O2O flows end to end through the HTTP API, the services and the simulators."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from hub import consumers, handlers
from hub.events import OrderStatusChanged
from hub.flows.erp_pull import pull_products, pull_warehouse_stock
from hub.services import housekeeping
from hub.storage.tables import OutboxMessage, ProcessedMessage
from tests.e2e.conftest import Hub
from workers.launcher import wait_for

NEAR_S002 = {"text": "Tianyaoqiao Road 1", "lat": 31.1930, "lng": 121.4390, "name": "Han Meimei",
             "phone": "13900001111"}
FAR_AWAY = {"text": "Songze Avenue 1, Qingpu", "lat": 31.1500, "lng": 121.1200, "name": "Han Meimei",
            "phone": "13900001111"}
BUYER = {"id": "u-42", "name": "Han Meimei", "phone": "13900001111"}


def now_iso(minutes: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def count(hub, store: str, sku: str, on_hand: int) -> None:
    r = hub.call("PUT", f"/api/v1/stores/{store}/stock", key=store,
                 json={"counted_at": now_iso(-1), "lines": [{"sku": sku, "on_hand": on_hand}]})
    assert r.status_code == 200, r.text


def place(hub, lines, fulfillment, key: str | None = None):
    return hub.call("POST", "/api/v1/orders", headers={"Idempotency-Key": key or uuid.uuid4().hex},
                    json={"lines": lines, "buyer": BUYER, "fulfillment": fulfillment})


def pay(hub, order_id: str) -> None:
    total = hub.order(order_id)["total_fen"]
    r = hub.sandbox.wechat_pay.notify(f"{hub.base}/callbacks/wechat_pay", order_id, total)
    assert r.status_code == 200 and r.json() == {"code": "SUCCESS"}, r.text


def test_store_pickup_end_to_end(hub):
    count(hub, "S001", "TEA-001", 5)
    r = place(hub, [{"sku": "TEA-001", "qty": 2}], {"type": "pickup", "store_id": "S001"})
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    code = hub.order(order_id)["pickup_code"]
    pay(hub, order_id)
    pos = hub.sandbox.pos
    wait_for(lambda: pos.order_for(order_id) is not None, 30, "the order at the store's POS")
    listed = hub.call("GET", "/api/v1/stores/S001/pickup-orders", key="S001").json()["orders"]
    assert [o["order_id"] for o in listed] == [order_id]
    assert hub.call("GET", "/api/v1/stores/S001/pickup-orders", key="S002").status_code == 403
    assert hub.call("POST", f"/api/v1/stores/S001/pickup-orders/{order_id}/ready", key="S001").status_code == 200
    wait_for(lambda: pos.pickup_state(order_id) == "PREPARED", 30, "PREPARED at the POS")
    wait_for(lambda: any(u.get("logistics_type") == 4 for u in hub.sandbox.wechat_pay.shipping_uploads), 30,
             "a self-pickup shipping-info upload")
    wrong = hub.call("POST", f"/api/v1/stores/S001/pickup-orders/{order_id}/collect", key="S001",
                     json={"pickup_code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 422
    right = hub.call("POST", f"/api/v1/stores/S001/pickup-orders/{order_id}/collect", key="S001",
                     json={"pickup_code": code})
    assert right.status_code == 200, right.text
    assert hub.wait_status(order_id, "completed")["status"] == "completed"
    # The ERP sees it exactly once in its feed, and receives the SOAP sales order; the CRM adds points.
    feed = hub.call("GET", "/api/v1/erp/orders?limit=50", key="erp").json()
    assert [o["order_id"] for o in feed["orders"]] == [order_id]
    assert hub.call("POST", "/api/v1/erp/orders/ack", key="erp", json={"order_ids": [order_id]}).status_code == 200
    assert hub.call("GET", "/api/v1/erp/orders?limit=50", key="erp").json()["orders"] == []
    wait_for(lambda: any(o.get("ExternalRef") == order_id for o in hub.sandbox.erp.received_orders), 30,
             "the ERP sales order")
    wait_for(lambda: any(e["order_no"] == order_id for e in hub.sandbox.crm.point_entries), 30, "CRM points")
    stock = hub.call("GET", "/api/v1/stock/TEA-001").json()
    s001 = next(loc for loc in stock["locations"] if loc["location_id"] == "S001")
    assert s001["available"] == 5 - 2 - 1          # channel safety stock 1
    wait_for(lambda: hub.sandbox.wechat_shop.stock_of("TEA-001", "S001") == 2, 30, "the shop's figure")
    # Operations see it from the gateway, though other processes did the work: metrics add up across them.
    pos_health = next(c for c in hub.call("GET", "/admin/api/connectors", key="ops").json()["connectors"]
                      if c["system"] == "pos")
    assert pos_health["calls"] >= 2 and pos_health["last_success_at"]
    text = hub.call("GET", "/metrics", key="ops").text
    assert f'hub_consumer_messages_total{{consumer="{handlers.STOCK_TO_SHOP.name}",outcome="applied"}}' in text
    assert 'hub_connector_call_duration_seconds_bucket{' in text and "process_resident_memory_bytes" in text
    assert hub.call("GET", "/admin/api/flow", key="ops").json()["queues"]      # RabbitMQ's depths, read passively


def pick_all(hub: Hub, store: str, order_id: str) -> None:
    """The store picks the whole order (the dispatch policy's default books the rider at pick complete)."""
    lines = [{"sku": x["sku"], "qty_picked": x["qty"]} for x in hub.order(order_id)["lines"]]
    r = hub.call("POST", f"/api/v1/stores/{store}/orders/{order_id}/picked", key=store, json={"lines": lines})
    assert r.status_code == 200, r.text


def test_nearby_delivery_end_to_end_with_duplicate_and_reordered_callbacks(hub):
    count(hub, "S002", "CUP-002", 4)
    hub.sandbox.local_delivery.faults.duplicate_callbacks = True
    r = place(hub, [{"sku": "CUP-002", "qty": 1}], {"type": "delivery", "address": NEAR_S002})
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    order = hub.order(order_id)
    assert order["fulfillment"]["store_id"] == "S002" or order["routing"]["location_id"] == "S002"
    reasons = {c["location_id"]: c["reason"] for c in order["routing"]["candidates"]}
    assert reasons["S001"].startswith("short of CUP-002")
    pay(hub, order_id)
    pick_all(hub, "S002", order_id)
    done = hub.wait_status(order_id, "completed", timeout=60)
    statuses = [e["status"] for e in done["timeline"]]
    for expected in ("paid", "allocated", "picked", "dispatched", "picked_up", "delivered", "completed"):
        assert expected in statuses
    rider = [e for e in done["timeline"] if "****" in (e.get("detail") or "")]
    assert rider, "the rider's masked phone is on the timeline"
    assert "13900001111" not in str(done["timeline"])


def test_failed_delivery_comes_back_to_the_store_end_to_end(hub):
    """The rider cannot hand it over: every callback confirmed with Dada's status query, the order ends
    returned, the goods are for sale at the store again and the refund is due."""
    count(hub, "S002", "CUP-002", 4)
    hub.sandbox.local_delivery.knobs.fate = "returned"
    order_id = place(hub, [{"sku": "CUP-002", "qty": 1}], {"type": "delivery", "address": NEAR_S002}).json()["order_id"]
    pay(hub, order_id)
    pick_all(hub, "S002", order_id)
    done = hub.wait_status(order_id, "returned", timeout=60)
    statuses = [e["status"] for e in done["timeline"]]
    for expected in ("dispatched", "picked_up", "returning", "returned"):
        assert expected in statuses
    s002 = next(loc for loc in hub.call("GET", "/api/v1/stock/CUP-002").json()["locations"]
                if loc["location_id"] == "S002")
    assert s002["available"] == 4 - 1              # all 4 on the shelf again, less the channel's safety stock
    assert len(hub.sandbox.local_delivery.requests_to("/api/order/status/query")) >= 5


def test_express_fallback_from_the_warehouse(hub):
    assert pull_products(hub.ctx) >= 0
    assert pull_warehouse_stock(hub.ctx) > 0           # the ERP's plant 1000 is the hub's WH01
    r = place(hub, [{"sku": "POT-003", "qty": 1}], {"type": "delivery", "address": FAR_AWAY})
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    order = hub.order(order_id)
    assert order["fulfillment"]["type"] == "express" and order["routing"]["location_id"] == "WH01"
    pay(hub, order_id)
    wait_for(lambda: hub.sandbox.express.orders.get(order_id) is not None, 30, "a waybill")
    done = hub.wait_status(order_id, "completed", timeout=60)
    assert "shipped" in [e["status"] for e in done["timeline"]]


def test_100_concurrent_orders_for_the_last_10_units_across_two_stores(hub):
    # 6 on hand at each store, the channel holds back 1 per store: 10 units are for sale.
    count(hub, "S001", "SET-004", 6)
    count(hub, "S002", "SET-004", 6)

    def attempt(i: int) -> int:
        store = "S001" if i % 2 else "S002"
        return place(hub, [{"sku": "SET-004", "qty": 1}], {"type": "pickup", "store_id": store}).status_code

    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(attempt, range(100)))
    assert codes.count(201) == 10 and codes.count(409) == 90
    stock = hub.call("GET", "/api/v1/stock/SET-004").json()
    assert stock["available"] == 0
    shop = hub.sandbox.wechat_shop
    wait_for(lambda: shop.stock_of("SET-004", "S001") == 0 and shop.stock_of("SET-004", "S002") == 0, 30,
             "the shop to show 0 at both stores")
    # Unpaid orders expire and give their units back; the shop shows them again.
    expired = housekeeping.expire_unpaid(hub.ctx, now=datetime.now(UTC) + timedelta(hours=1))
    assert len(expired) == 10
    wait_for(lambda: shop.stock_of("SET-004", "S001") == 5 and shop.stock_of("SET-004", "S002") == 5, 30,
             "released stock on the shop")


def _handled(hub, consumer: str, order_id: str, to_status: str) -> bool:
    """Whether `consumer` has handled this order's move to `to_status` (its event is in processed_messages)."""
    with hub.ctx.reader() as uow:
        ids = [m for m, p in uow.session.execute(select(OutboxMessage.message_id, OutboxMessage.payload).where(
            OutboxMessage.event_type == OrderStatusChanged.TYPE))
            if OrderStatusChanged.from_data(p["data"]).order_id == order_id
            and OrderStatusChanged.from_data(p["data"]).to_status == to_status]
        done = uow.session.execute(select(func.count()).select_from(ProcessedMessage).where(
            ProcessedMessage.consumer == consumer, ProcessedMessage.message_id.in_(ids))).scalar_one() if ids else 0
    return bool(ids) and done == len(ids)


def test_courier_failure_is_parked_then_replayed_after_recovery(hub):
    count(hub, "S002", "CUP-002", 4)
    courier = hub.sandbox.local_delivery
    courier.faults.error_rate, courier.faults.error_status = 1.0, 503
    order_id = place(hub, [{"sku": "CUP-002", "qty": 1}], {"type": "delivery", "address": NEAR_S002}).json()["order_id"]
    pay(hub, order_id)
    # The booking is due at the pick: the flow reads the order as it is then, so an "allocated" event handled only
    # after the pick (a slow run) books too — two failed bookings, two letters. The pick waits for it.
    wait_for(lambda: _handled(hub, handlers.DELIVERY_TO_COURIER.name, order_id, "allocated"), 60,
             "the allocated event at the booking consumer")
    pick_all(hub, "S002", order_id)

    def parked():
        # This order's booking only: an event of the previous test still in a consumer when the tables were
        # emptied parks a NotFound letter of its own, which made a count of all letters flaky.
        return [d for d in consumers.dead_letters(hub.ctx) if d.target == handlers.DELIVERY_TO_COURIER.name
                and (d.payload.get("data") or {}).get("order_id") == order_id]

    wait_for(lambda: len(parked()) == 1, 180, "a dead letter for the booking", interval=0.5)
    assert hub.order(order_id)["status"] == "picked"
    courier.faults.error_rate = 0.0
    letter = parked()[0]
    assert "503" in letter.error and letter.attempts >= 1
    r = hub.call("POST", f"/admin/dead-letters/{letter.id}/replay", key="ops")
    assert r.status_code == 200, r.text
    hub.wait_status(order_id, "dispatched")
    assert parked() == []


def test_bad_signature_is_rejected_and_changes_nothing(hub):
    count(hub, "S001", "TEA-001", 5)
    order_id = place(hub, [{"sku": "TEA-001", "qty": 1}], {"type": "pickup", "store_id": "S001"}).json()["order_id"]
    pay_sim = hub.sandbox.wechat_pay
    pay_sim.knobs.bad_signature = True
    r = pay_sim.notify(f"{hub.base}/callbacks/wechat_pay", order_id, hub.order(order_id)["total_fen"])
    assert r.status_code == 401
    assert hub.order(order_id)["status"] == "pending_payment"


def test_a_paid_order_cancelled_and_a_partial_refund_end_to_end(hub):
    """Production mode: the gateway owes, the relay publishes, fulfilment asks WeChat Pay (signed), the
    platform's notification comes back to the gateway, and only then is the order refunded."""
    count(hub, "S002", "CUP-002", 5)
    r = place(hub, [{"sku": "CUP-002", "qty": 2}], {"type": "pickup", "store_id": "S002"})
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    pay(hub, order_id)
    partial = hub.call("POST", f"/api/v1/orders/{order_id}/refund", key="ops",
                       headers={"Idempotency-Key": "e2e-partial"}, json={"amount_fen": 500, "reason": "tea stain"})
    assert partial.status_code == 202, partial.text
    wait_for(lambda: [x["status"] for x in hub.order(order_id)["refunds"]] == ["success"], 30,
             "the partial refund paid back")
    assert hub.order(order_id)["status"] == "allocated"                  # a partial refund leaves it alone
    assert hub.call("POST", f"/api/v1/orders/{order_id}/cancel", json={"reason": "changed my mind"}).status_code == 200
    done = hub.wait_status(order_id, "refunded")
    assert sorted(x["amount_fen"] for x in done["refunds"]) == [500, done["total_fen"] - 500]
    assert all(x["status"] == "success" for x in done["refunds"])
    assert sorted(r.amount_fen for r in hub.sandbox.wechat_pay.refunds.values()
                  if r.order_ref == order_id) == [500, done["total_fen"] - 500]

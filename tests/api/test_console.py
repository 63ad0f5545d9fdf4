"""`/admin/api`, what the console shows: connector health from the metrics, flow and backlog, stock with
the ledger's provenance, order search with the timeline, dead letters filtered and replayed (one, many)."""
from __future__ import annotations

from hub import consumers
from hub.api.pipeline import csrf_token
from hub.connector_health import ConnectorHealth
from hub.events import Probe
from hub.metered import Metered
from tests.support import T0

from .conftest import CHANNEL_KEY, OPS_KEY, POS_KEYS
from .test_ops import park


class Shop:
    def __init__(self) -> None:
        self.fail = False

    def update_store_stock(self, sku: str, store: str, qty: int) -> None:
        if self.fail:
            raise RuntimeError("wechat_shop: HTTP 503")


def test_connector_health_counts_calls_errors_and_latency_of_the_window(api):
    clock = [1000.0]
    api.deps.health = ConnectorHealth(api.deps.metrics, clock=lambda: clock[0])
    shop = Shop()
    metered = Metered("wechat_shop", shop, api.deps.metrics)
    metered.update_store_stock("TEA-001", "S001", 3)
    shop.fail = True
    for _ in range(3):
        try:
            metered.update_store_stock("TEA-001", "S001", 3)
        except RuntimeError:
            pass
    park(api, "TransientError: wechat_shop: HTTP 503 from the shop")
    r = api.get("/admin/api/connectors", key=OPS_KEY)
    assert r.status_code == 200
    row = next(c for c in r.json["connectors"] if c["system"] == "wechat_shop")
    assert (row["calls"], row["errors"], row["error_rate"]) == (4, 3, 0.75)
    assert row["latency_ms_avg"] is not None and row["last_success_at"] and row["last_failure_at"]
    assert row["kind"] == "wechat_shop" and "HTTP 503" in row["last_error"]
    assert next(c for c in r.json["connectors"] if c["system"] == "crm")["calls"] == 0
    # an hour on, with no calls since: the window is empty again, the last times remain
    clock[0] += 61
    api.get("/admin/api/connectors", key=OPS_KEY)
    clock[0] += 3600
    row = next(c for c in api.get("/admin/api/connectors", key=OPS_KEY).json["connectors"]
               if c["system"] == "wechat_shop")
    assert (row["calls"], row["errors"], row["error_rate"]) == (0, 0, None) and row["last_failure_at"]


def test_stock_lookup_shows_the_ledger_with_source_document_and_before_after(api):
    api.stock(10)
    r = api.post("/api/v1/stores/S001/sales", {"receipt_id": "R-77", "sold_at": "2026-11-25T10:05:00+08:00",
                                               "lines": [{"sku": "TEA-001", "qty": 3}]}, key=POS_KEYS["S001"])
    assert r.status_code == 201
    r = api.get("/admin/api/stock/TEA-001?location=S001", key=OPS_KEY)
    assert r.status_code == 200
    assert [x["location_id"] for x in r.json["locations"]] == ["S001"] and r.json["locations"][0]["on_hand"] == 7
    sale, count = r.json["history"][0], r.json["history"][1]
    assert (sale["source"], sale["document_id"], sale["before"], sale["after"]) == ("pos:S001", "R-77", 10, 7)
    assert sale["at"].startswith("2026-11-25T10:05:00+08:00")
    assert (count["kind"], count["before"], count["after"]) == ("count", 0, 10)
    assert api.get("/admin/api/stock/NOPE", key=OPS_KEY).status_code == 404
    assert api.get("/admin/api/stock/TEA-001?location=NOWHERE", key=OPS_KEY).status_code == 404
    assert api.get("/admin/api/stock/TEA-001", key=CHANNEL_KEY).status_code == 401


def test_order_search_by_phone_suffix_store_and_status_with_the_timeline(api):
    api.stock(10)
    pickup = api.order("k1")
    api.pay(pickup)
    delivery = api.order("k2", kind="delivery")
    found = api.get("/admin/api/orders?phone_suffix=8000", key=OPS_KEY).json["orders"]
    assert {o["order_id"] for o in found} == {pickup, delivery}
    assert all(o["buyer_phone"] == "138****8000" for o in found)            # masked here too
    assert api.get("/admin/api/orders?phone_suffix=9999", key=OPS_KEY).json["orders"] == []
    by_status = api.get("/admin/api/orders?status=pending_payment", key=OPS_KEY).json["orders"]
    assert [o["order_id"] for o in by_status] == [delivery]
    assert api.get("/admin/api/orders?status=nonsense", key=OPS_KEY).status_code == 422
    assert api.get("/admin/api/orders?phone_suffix=12ab", key=OPS_KEY).status_code == 422
    assert api.get(f"/admin/api/orders?order_id={pickup[-6:]}", key=OPS_KEY).json["orders"][0]["order_id"] == pickup
    detail = api.get(f"/admin/api/orders/{pickup}", key=OPS_KEY).json
    assert [t["status"] for t in detail["timeline"]][:2] == ["pending_payment", "paid"]
    assert api.get("/admin/api/orders/NOPE", key=OPS_KEY).status_code == 404


def test_flow_shows_event_rates_backlog_and_consumers(api):
    api.stock(1)
    api.deps.queue_depths = lambda: {"channel_sync.on_stock_changed": 4}
    park(api)
    f = api.get("/admin/api/flow", key=OPS_KEY).json
    assert f["outbox_unsent"] > 0 and f["dead_letters_parked"] == 1
    assert f["queues"] == {"channel_sync.on_stock_changed": 4}
    assert any(e["type"] == "stock.changed" and e["last_1h"] > 0 for e in f["events"])
    text = api.get("/metrics", key=OPS_KEY).get_data(as_text=True)
    assert 'hub_queue_messages{queue="channel_sync.on_stock_changed"} 4.0' in text


def test_dead_letters_filter_and_replay_one_or_many(api):
    first = park(api, "TransientError: wechat_shop: HTTP 503")
    with api.ctx.uow() as uow:                       # a second consumer's letter
        from hub.storage.tables import DeadLetter
        row = DeadLetter(target="erp_sync.push", message_id="m-2", payload={"id": "m-2", "data": {}},
                         error="PermanentError: erp: fault", attempts=3, first_failed_at=T0, last_failed_at=T0,
                         status="parked")
        uow.session.add(row)
        uow.commit()
        second = row.id
    listed = api.get("/admin/api/dead-letters?target=erp_sync.push", key=OPS_KEY).json
    assert [d["id"] for d in listed["dead_letters"]] == [second]
    assert listed["targets"] == ["channel_sync.publish_stock", "erp_sync.push"]
    assert [d["id"] for d in api.get("/admin/api/dead-letters?q=503", key=OPS_KEY).json["dead_letters"]] == [first]

    replayed: list[int] = []
    api.deps.replay_dead_letter = lambda i: replayed.append(i) or i == first
    basic = api.basic(OPS_KEY)
    # the browser's basic credentials alone are not enough: the console's token must come along
    r = api.call("POST", f"/admin/api/dead-letters/{first}/replay", key=None, headers=basic, json={})
    assert r.status_code == 403 and replayed == []
    r = api.call("POST", f"/admin/api/dead-letters/{first}/replay", key=None, json={},
                 headers={**basic, "X-Console-Token": csrf_token(api.ctx.config)})
    assert r.status_code == 200 and r.json == {"dead_letter_id": first, "replayed": True}
    r = api.post("/admin/api/dead-letters/replay", {"ids": [first, second]}, key=OPS_KEY)
    assert r.json["replayed"] == 1 and r.json["failed"] == 1
    r = api.post("/admin/api/dead-letters/replay", {"target": "erp_sync.push"}, key=OPS_KEY)
    assert [x["dead_letter_id"] for x in r.json["results"]] == [second]
    assert api.post("/admin/api/dead-letters/replay", {}, key=OPS_KEY).status_code == 422
    assert api.post("/admin/api/dead-letters/999/replay", {}, key=OPS_KEY).status_code == 404


def test_bulk_replay_through_the_real_consumer_removes_what_succeeds(api, monkeypatch):
    def flaky(ctx, uow, data):
        if not data["ok"]:
            raise RuntimeError("still down")

    known = {"console_test.flaky": consumers.Consumer("console_test.flaky", Probe, flaky, "console_test")}
    ids = [consumers.park(api.ctx, "console_test.flaky", {"id": f"m{i}", "data": {"ok": i % 2 == 0}}, "down", 3)
           for i in range(4)]
    api.deps.replay_dead_letter = lambda i: consumers.replay(api.ctx, i, known)
    r = api.post("/admin/api/dead-letters/replay", {"target": "console_test.flaky"}, key=OPS_KEY)
    assert (r.json["replayed"], r.json["failed"]) == (2, 2)
    left = [d["id"] for d in api.get("/admin/api/dead-letters", key=OPS_KEY).json["dead_letters"]]
    assert left == [ids[1], ids[3]]


def test_reconciliation_drift_from_the_metrics(api):
    api.deps.metrics.reconciliation_drift.labels("wechat_shop").inc(3)
    api.deps.metrics.reconciliation_repaired.labels("wechat_shop").inc(2)
    assert api.get("/admin/api/reconciliation", key=OPS_KEY).json["channels"] == [    # every configured channel
        {"channel": "meituan", "drift_found": 0, "repaired": 0},
        {"channel": "miniprogram", "drift_found": 0, "repaired": 0},
        {"channel": "wechat_shop", "drift_found": 3, "repaired": 2}]


def test_the_console_reads_flash_sales_with_its_basic_credentials_but_cannot_arm_one(api):
    """The console's flash-sale panel said "missing or wrong key": the list took the ops key as a bearer only."""
    basic = api.basic(OPS_KEY)
    r = api.call("GET", "/admin/api/flash-sales", key=None, headers=basic)
    assert r.status_code == 200 and r.json["flash_sales"] == []
    # Arming stays a bearer-key call: a browser's remembered basic password must not arm a sale from another page.
    arm = {"sku": "TEA-001", "location_id": "S001", "quota": 5}
    assert api.call("POST", "/admin/api/flash-sales", key=None, headers=basic, json=arm).status_code == 401


def test_a_dead_letter_of_unknown_outcome_is_shown_and_replayed_only_when_told_to_resend(api):
    from hub.storage.tables import DeadLetter
    with api.ctx.uow() as uow:
        row = DeadLetter(target="erp_sync.sales_order", message_id="m-9", payload={"id": "m-9", "data": {}},
                         error="OutcomeUnknown: erp: BAPI_SALESORDER_CREATEFROMDAT2 for order O-1: the answer was "
                               "lost", attempts=1, first_failed_at=T0, last_failed_at=T0, status="parked",
                         kind="unknown_outcome")
        uow.session.add(row)
        uow.commit()
        letter = row.id
    listed = api.get("/admin/api/dead-letters", key=OPS_KEY).json["dead_letters"]
    assert [(d["id"], d["kind"]) for d in listed] == [(letter, "unknown_outcome")]

    calls: list[tuple[int, bool]] = []
    api.deps.replay_dead_letter = lambda i, resend=False: calls.append((i, resend)) or True
    r = api.post(f"/admin/api/dead-letters/{letter}/replay", {}, key=OPS_KEY)
    assert r.status_code == 409 and r.json["error"] == "unknown_outcome" and calls == []
    r = api.post("/admin/api/dead-letters/replay", {"ids": [letter]}, key=OPS_KEY)   # never resent in bulk
    assert r.json["unknown_outcome"] == [letter] and r.json["replayed"] == 0 and calls == []
    r = api.post(f"/admin/api/dead-letters/{letter}/replay", {"resend": True}, key=OPS_KEY)
    assert r.status_code == 200 and r.json["replayed"] is True and calls == [(letter, True)]
    assert api.post(f"/admin/api/dead-letters/{letter}/replay", {"resend": "yes"}, key=OPS_KEY).status_code == 422

"""Operations: health, Prometheus metrics, the console and dead-letter replay; the OpenAPI
document agrees with the route table; and the app served on a real loopback port."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

import requests
from werkzeug.serving import make_server

from hub.api.app import ROUTES, build_api
from hub.api.pipeline import csrf_token
from hub.bootstrap import HubContext
from hub.storage.db import make_engine
from hub.storage.tables import DeadLetter, OutboxMessage, RefundRow
from tests.support import T0, make_order_row

from .conftest import CHANNEL_KEY, OPS_KEY, POS_KEYS


def park(api, error="TransientError: wechat_shop: HTTP 503 from the shop") -> int:
    with api.ctx.uow() as uow:
        row = DeadLetter(target="channel_sync.publish_stock", message_id="m-1", payload={"id": "m-1", "data": {}},
                         error=error, attempts=3, first_failed_at=T0, last_failed_at=T0, status="parked")
        uow.session.add(row)
        uow.commit()
        return row.id


def test_health_reports_backlog_without_a_key(api):
    api.stock(1)                                  # writes stock.changed events to the outbox
    park(api)
    r = api.get("/health", key=None)
    assert r.status_code == 200 and r.json["status"] == "ok"
    assert r.json["outbox_unsent"] > 0 and r.json["dead_letters"] == 1


def test_health_is_503_when_the_database_is_gone(api, tmp_path):
    api.ctx.engine.dispose()
    broken = HubContext(api.ctx.config, make_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none"))
    r = type(api)(broken, api.deps, build_api(broken, api.deps), api.clock).get("/health", key=None)
    assert r.status_code == 503 and r.json["database"] == "unreachable"


def test_metrics_in_prometheus_text(api):
    api.stock(10)
    api.order()
    api.post("/api/v1/stores/S001/sales", {"receipt_id": "R1", "sold_at": "2026-11-25T10:05:00+08:00",
                                           "lines": [{"sku": "CUP-002", "qty": 1}]}, key=POS_KEYS["S001"])
    api.get("/api/v1/stock/NOPE")
    r = api.get("/metrics", key=OPS_KEY)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.get_data(as_text=True)
    assert 'hub_orders_placed_total{fulfillment="pickup"} 1.0' in text
    assert 'hub_stock_events_applied_total{kind="delta",source="pos"} 1.0' in text
    assert 'hub_http_requests_total{method="GET",route="/api/v1/stock/{sku}",status="404"} 1.0' in text
    # latency per route template, not per raw path
    assert 'hub_http_request_duration_seconds_count{method="GET",route="/api/v1/stock/{sku}"} 1.0' in text
    assert "/api/v1/stock/NOPE" not in text
    assert re.search(r"^hub_outbox_unsent \d+\.0$", text, re.M) and "hub_dead_letters_parked 0.0" in text
    assert "# TYPE hub_http_requests_total counter" in text
    assert "# TYPE hub_http_request_duration_seconds histogram" in text


def test_metrics_carry_the_age_of_the_oldest_unsent_event_and_of_each_waiting_refund(api):
    text = api.get("/metrics", key=OPS_KEY).get_data(as_text=True)
    assert "hub_outbox_oldest_unsent_age_seconds 0.0" in text               # nothing waits: 0, not absent
    assert 'hub_refunds_oldest_open_age_seconds{status="processing"} 0.0' in text
    with api.ctx.uow() as uow:
        make_order_row(uow, "o-1", status="cancelled")
        uow.session.add_all([
            OutboxMessage(message_id="m-old", event_type="stock.changed", payload={}, created_at=T0 - timedelta(
                seconds=600)),
            OutboxMessage(message_id="m-sent", event_type="stock.changed", payload={},
                          created_at=T0 - timedelta(hours=2), sent_at=T0 - timedelta(hours=2)),
            *[RefundRow(refund_no=f"r-{n}", order_id="o-1", payment_ref="tx", paid_fen=100, amount_fen=10,
                        cause="asked", source="ops", status=status, updated_at=T0 - timedelta(seconds=age))
              for n, (status, age) in enumerate([("processing", 1800), ("processing", 60), ("success", 9000)])]])
        uow.commit()
    text = api.get("/metrics", key=OPS_KEY).get_data(as_text=True)
    assert "hub_outbox_oldest_unsent_age_seconds 600.0" in text             # the sent, older one does not count
    assert 'hub_refunds_oldest_open_age_seconds{status="processing"} 1800.0' in text
    assert 'hub_refunds_oldest_open_age_seconds{status="requested"} 0.0' in text
    assert 'hub_refunds{status="processing"} 2.0' in text


def test_console_page_carries_its_token_and_pick_lists_and_the_form_replay_still_works(api):
    dl = park(api)
    replayed: list[int] = []
    api.deps.replay_dead_letter = lambda i: replayed.append(i) or True
    page = api.get("/admin", key=None, headers=api.basic(OPS_KEY))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert csrf_token(api.ctx.config) in html and '"S001"' in html and "库存查询 Stock lookup" in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert api.get("/admin", key=None, headers=api.basic("wrong")).status_code == 401
    # a plain form with basic credentials: the form token is required
    basic = api.basic(OPS_KEY)
    r = api.call("POST", f"/admin/dead-letters/{dl}/replay", key=None, headers=basic, data={"csrf": "forged"})
    assert r.status_code == 403 and replayed == []
    r = api.call("POST", f"/admin/dead-letters/{dl}/replay", key=None, headers=basic,
                 data={"csrf": csrf_token(api.ctx.config)})
    assert r.status_code == 303 and r.headers["Location"] == f"/admin?replayed={dl}&ok=1" and replayed == [dl]
    # from a script (bearer): JSON
    r = api.post(f"/admin/dead-letters/{dl}/replay", key=OPS_KEY)
    assert r.status_code == 200 and r.json == {"dead_letter_id": dl, "replayed": True}
    assert api.post("/admin/dead-letters/999/replay", key=OPS_KEY).status_code == 404
    api.deps.replay_dead_letter = None          # no hook: this process's own flows replay it, never a 503
    r = api.post(f"/admin/dead-letters/{dl}/replay", key=OPS_KEY)
    assert r.status_code == 200 and r.json["dead_letter_id"] == dl and isinstance(r.json["replayed"], bool)


def test_the_plain_form_resends_a_letter_of_unknown_outcome_only_when_it_says_resend(api):
    with api.ctx.uow() as uow:
        row = DeadLetter(target="erp_sales_order", message_id="m-7", payload={"id": "m-7", "data": {}},
                         error="OutcomeUnknown: the answer was lost", attempts=1, first_failed_at=T0,
                         last_failed_at=T0, status="parked", kind="unknown_outcome")
        uow.session.add(row)
        uow.commit()
        dl = row.id
    calls: list[tuple[int, bool]] = []
    api.deps.replay_dead_letter = lambda i, resend=False: calls.append((i, resend)) or True
    form = {"csrf": csrf_token(api.ctx.config)}
    r = api.call("POST", f"/admin/dead-letters/{dl}/replay", key=None, headers=api.basic(OPS_KEY), data=form)
    assert r.status_code == 409 and calls == []
    r = api.call("POST", f"/admin/dead-letters/{dl}/replay", key=None, headers=api.basic(OPS_KEY),
                 data={**form, "resend": "1"})
    assert r.status_code == 303 and r.headers["Location"] == f"/admin?replayed={dl}&ok=1" and calls == [(dl, True)]


def test_every_route_is_documented_and_every_documented_operation_is_served(api):
    doc = api.get("/openapi.json", key=None).json
    assert doc["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {(r.method, r.path) for r in ROUTES}
    assert documented == served
    for method, path in documented:
        concrete = re.sub(r"{(\w+)}", lambda m: {"connector": "wechat_pay", "store_id": "S001"}.get(m[1], "X1"),
                          path)
        r = api.call(method, concrete, key=None, json={})
        # the router matched it: the request is counted under the documented path, not "unmatched"
        assert api.deps.metrics.registry.get_sample_value(
            "hub_http_requests_total", {"route": path, "method": method, "status": str(r.status_code)}) >= 1, \
            (method, path, r.status_code)
    order = doc["paths"]["/api/v1/orders"]["post"]
    assert order["requestBody"]["content"]["application/json"]["schema"]["properties"]["lines"]["minItems"] == 1
    assert {"name": "Idempotency-Key", "in": "header", "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$",
                       "description": "the client's key for this request"}} \
        in order["parameters"]


def test_unknown_path_and_wrong_method(api):
    r = api.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json["error"] == "not_found"
    r = api.call("DELETE", "/api/v1/orders")
    assert r.status_code == 405 and r.json["error"] == "method_not_allowed"
    assert r.headers["Allow"] == "POST"                       # RFC 9110: a 405 names what is allowed
    r = api.call("PATCH", "/api/v1/stock/TEA-001")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    r = api.get("/callbacks/local_delivery", key=None)        # a connector that takes POST only
    assert r.status_code == 405 and r.headers["Allow"] == "POST"


def test_the_document_lists_every_status_served_and_the_limits_validated(api):
    doc = api.get("/openapi.json", key=None).json
    stock = doc["paths"]["/api/v1/stock/{sku}"]["get"]
    assert "422" in stock["responses"]                         # lat without lng
    lat = next(p for p in stock["parameters"] if p["name"] == "lat")
    assert lat["schema"] == {"type": "number", "minimum": -90, "maximum": 90}
    nearby = doc["paths"]["/api/v1/stores/nearby"]["get"]
    qty = next(p for p in nearby["parameters"] if p["name"] == "qty")
    assert qty["schema"]["minimum"] == 1 and qty["schema"]["maximum"] == 9999
    callback = doc["paths"]["/callbacks/{connector}"]
    assert "404" in callback["get"]["responses"] and "404" in callback["post"]["responses"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/v1/stores/{store_id}"):
                assert "403" in op["responses"], (method, path)
            if "requestBody" in op:
                assert {"400", "413", "422"} <= set(op["responses"]), (method, path)
    feed = doc["paths"]["/api/v1/erp/orders"]["get"]
    assert next(p for p in feed["parameters"] if p["name"] == "limit")["schema"]["minimum"] == 1
    # what the document says is what the API does: qty 0 is refused, the boundary accepted
    api.stock(10)
    assert api.get("/api/v1/stores/nearby?lat=31.2&lng=121.4&qty=0").status_code == 422
    assert api.get("/api/v1/stores/nearby?lat=31.2&lng=121.4&qty=1").status_code == 200
    assert api.get("/api/v1/stock/TEA-001?lng=121.4").status_code == 422


def test_every_error_is_json(api):
    r = api.call("GET", "/api/v1/stock/TEA-001", key=CHANNEL_KEY, headers={"Content-Length": "-1"})
    assert r.headers["Content-Type"].startswith("application/json")
    for method, path in [("GET", "/nothing"), ("PATCH", "/api/v1/orders"), ("OPTIONS", "/health"),
                         ("GET", "/callbacks/nope")]:
        r = api.call(method, path, key=None)
        assert r.status_code in (404, 405) and r.headers["Content-Type"].startswith("application/json"), path
        assert r.json["error"] and r.json["message"]


def test_served_on_a_real_loopback_port(api):
    api.stock(10)
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        auth = {"Authorization": f"Bearer {CHANNEL_KEY}"}
        stock = requests.get(f"{base}/api/v1/stock/TEA-001?lat=31.225&lng=121.445", headers=auth, timeout=5)
        assert stock.status_code == 200 and stock.json()["locations"][0]["pickup"] is True
        body = {"lines": [{"sku": "TEA-001", "qty": 1}], "buyer": {"id": "b1"},
                "fulfillment": {"type": "pickup", "store_id": "S001"}}
        placed = requests.post(f"{base}/api/v1/orders", json=body, headers={**auth, "Idempotency-Key": "real-1"},
                               timeout=5)
        assert placed.status_code == 201
        got = requests.get(f"{base}/api/v1/orders/{placed.json()['order_id']}", headers=auth, timeout=5)
        assert got.status_code == 200 and got.json()["status"] == "pending_payment"
        assert requests.get(f"{base}/health", timeout=5).json()["status"] == "ok"
    finally:
        server.shutdown()
        server.server_close()

"""Hostile and odd input: a till with a wrong clock, non-ASCII codes and signatures, calendar-edge times,
bodies too big or streamed without end. Each gets a clear 4xx and changes nothing, never a 500."""
from __future__ import annotations

import http.client
import io
import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from hub.domain.model import StockCount
from hub.services import inventory
from hub.storage.tables import StockMovement
from sandbox.credentials import sandbox_env
from sandbox.express import k100_sign

from .conftest import POS_KEYS
from .test_callbacks import booked_delivery, dada, rider, status

S1 = POS_KEYS["S001"]
STORE = "/api/v1/stores/S001"


def movements(api) -> int:
    with api.ctx.uow() as uow:
        return uow.session.execute(select(func.count()).select_from(StockMovement)).scalar_one()


def iso(api, minutes: float) -> str:
    return (api.clock.now + timedelta(minutes=minutes)).isoformat()


# -- finding 3: a till with a wrong clock must not freeze the ledger -------------------------------------------

def test_a_count_from_the_future_is_refused_and_the_ledger_keeps_moving(api):
    api.stock(10)
    before = movements(api)
    r = api.put(f"{STORE}/stock", {"counted_at": iso(api, 24 * 60), "lines": [{"sku": "TEA-001", "on_hand": 50}]},
                key=S1)
    assert r.status_code == 422 and r.json["error"] == "time_ahead" and r.json["field"] == "counted_at"
    assert movements(api) == before and api.level().on_hand == 10
    # a real sale now still counts ...
    sale = {"receipt_id": "R-NOW", "sold_at": iso(api, 0), "lines": [{"sku": "TEA-001", "qty": 1}]}
    assert api.post(f"{STORE}/sales", sale, key=S1).status_code == 201 and api.level().on_hand == 9
    # ... and a pickup hand-over takes its units out of on-hand (not only out of reserved)
    oid = api.order(qty=2)
    api.pay(oid)
    assert api.post(f"{STORE}/pickup-orders/{oid}/ready", key=S1).status_code == 200
    code = api.get(f"/api/v1/orders/{oid}").json["pickup_code"]
    r = api.post(f"{STORE}/pickup-orders/{oid}/collect", {"pickup_code": code}, key=S1)
    assert r.status_code == 200 and r.json["status"] == "completed"
    level = api.level()
    assert (level.on_hand, level.reserved) == (7, 0)


def test_a_count_a_few_minutes_ahead_is_within_the_tolerance(api):
    api.stock(10)
    r = api.put(f"{STORE}/stock", {"counted_at": iso(api, 4), "lines": [{"sku": "TEA-001", "on_hand": 6}]}, key=S1)
    assert r.status_code == 200 and api.level().on_hand == 6


def test_sales_from_the_future_are_refused_with_time_ahead_alone_or_in_a_batch(api):
    api.stock(10)
    ahead = {"receipt_id": "R-AHEAD", "sold_at": iso(api, 60), "lines": [{"sku": "TEA-001", "qty": 1}]}
    r = api.post(f"{STORE}/sales", ahead, key=S1)
    assert r.status_code == 422 and r.json["error"] == "time_ahead" and r.json["field"] == "sold_at"
    ok = {"receipt_id": "R-OK", "sold_at": iso(api, -1), "lines": [{"sku": "TEA-001", "qty": 1}]}
    r = api.post(f"{STORE}/sales", {"receipts": [ahead, ok]}, key=S1)
    assert r.status_code == 200 and (r.json["applied"], r.json["refused"]) == (1, 1)
    assert r.json["receipts"][0]["code"] == "time_ahead" and api.level().on_hand == 9


def test_the_pos_webhook_and_the_ledger_refuse_a_time_ahead_too(api):
    from hub.storage.bindings import SqlBinder
    from sandbox import pos as pos_sim
    pos_sim.seed_binder(SqlBinder(api.ctx.session_factory), ["TEA-001"])
    api.stock(10)
    sim = pos_sim.PosSimulator(api_key="unused")
    change = sim.adjustment("TEA-001", 2, "S001", change_id="ADJ-FUTURE")      # dated by the real clock
    api.clock.now = api.clock.now.replace(year=api.clock.now.year - 1)           # the hub's clock a year behind
    before = movements(api)
    r = api.post(f"{STORE}/inventory-changes", {"changes": [change]}, key=S1)
    assert r.status_code == 422 and r.json["error"] == "time_ahead" and movements(api) == before
    # the ledger itself (an ERP pull, a script) refuses it as well
    from hub.domain.errors import TimeAhead
    with api.ctx.uow() as uow, pytest.raises(TimeAhead):
        inventory.apply_count(uow, StockCount("erp", "c-1", "TEA-001", "WH01", 5, api.clock.now + timedelta(hours=1)),
                              api.clock.now)


def test_a_courier_report_from_the_future_does_not_freeze_the_order(api, courier):
    oid = booked_delivery(api)
    t = int(time.time())
    rider(courier, oid, 2)
    assert api.client.post("/callbacks/local_delivery", data=dada(oid, 2, t + 86400)).status_code == 200
    rider(courier, oid, 3)
    assert api.client.post("/callbacks/local_delivery", data=dada(oid, 3, t + 2)).status_code == 200   # real, later
    assert status(api, oid) == "picked_up"
    timeline = api.get(f"/api/v1/orders/{oid}").json["timeline"]
    assert all(e["at"] <= iso_now(api) for e in timeline)


def iso_now(api) -> str:
    from datetime import UTC, datetime

    from hub.services.orders import local_now
    return local_now(api.ctx.config, datetime.now(UTC) + timedelta(seconds=5)).isoformat(timespec="seconds")


# -- finding 7: non-ASCII input and calendar edges ---------------------------------------------------------

def test_a_full_width_pickup_code_is_422_not_500(api):
    api.stock(10)
    oid = api.order()
    api.pay(oid)
    api.post(f"{STORE}/pickup-orders/{oid}/ready", key=S1)
    for code in ("１２３４５６", "12345é", "١٢٣٤٥٦"):
        r = api.post(f"{STORE}/pickup-orders/{oid}/collect", {"pickup_code": code}, key=S1)
        assert r.status_code == 422 and r.json["field"] == "pickup_code", (code, r.status_code)
    assert api.get(f"/api/v1/orders/{oid}").json["status"] == "ready_for_pickup"


def test_non_ascii_signatures_are_401_for_every_system(api):
    oid = booked_delivery(api)
    body = json.loads(dada(oid, 2, int(time.time())))
    body["signature"] = "é" * 32
    r = api.client.post("/callbacks/local_delivery", data=json.dumps(body, ensure_ascii=False).encode())
    assert r.status_code == 401 and r.json["error"] == "bad_signature"
    param = json.dumps({"lastResult": {"nu": "SF1", "state": "0", "data": []}})
    r = api.client.post("/callbacks/express", data={"param": param, "sign": "签名" * 16})
    assert r.status_code == 401 and r.json["result"] is False
    assert k100_sign(param, sandbox_env()["HUB_KUAIDI100_SALT"])              # (the real sign is ASCII hex)
    q = {"signature": "é" * 40, "timestamp": str(int(time.time())), "nonce": "n1", "echostr": "hi"}
    assert api.client.get("/callbacks/wechat_shop", query_string=q).status_code == 401
    assert api.client.post("/callbacks/wechat_shop", query_string=q, data=b"{}").status_code == 401
    headers = {"Wechatpay-Timestamp": str(int(time.time())), "Wechatpay-Nonce": "n", "Wechatpay-Serial": "x",
               "Wechatpay-Signature": "sïg"}
    assert api.client.post("/callbacks/wechat_pay", data=b"{}", headers=headers).status_code == 401
    assert status(api, oid) == "dispatched"


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                  "1900-01-01T00:00:00+08:00", "0001-01-01T00:00:00+00:00"])
def test_calendar_edge_times_are_422(api, when):
    api.stock(10)
    before = movements(api)
    sale = {"receipt_id": "R-EDGE", "sold_at": when, "lines": [{"sku": "TEA-001", "qty": 1}]}
    for r in (api.post(f"{STORE}/sales", sale, key=S1),
              api.post(f"{STORE}/sales", {"receipts": [sale]}, key=S1),
              api.put(f"{STORE}/stock", {"counted_at": when, "lines": [{"sku": "TEA-001", "on_hand": 1}]}, key=S1)):
        assert r.status_code == 422 and r.json["field"].endswith(("sold_at", "counted_at")), r.json
    assert movements(api) == before


def test_a_courier_callback_with_a_calendar_edge_time_is_422(api):
    oid = booked_delivery(api)
    r = api.client.post("/callbacks/local_delivery", data=dada(oid, 2, 10 ** 12))     # the year 33658
    assert r.status_code == 422
    assert status(api, oid) == "dispatched"


# -- the body-size limit, on every route, while reading ----------------------------------------------------

class Endless(io.RawIOBase):
    """A request body that never ends, counting what the server read of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = len(b)
        b[:n] = b"x" * n
        self.read_bytes += n
        return n


def _chunked_environ(path: str, stream, key: str | None = S1) -> dict:
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "hub", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "wsgi.input": stream, "HTTP_TRANSFER_ENCODING": "chunked",
               "CONTENT_TYPE": "application/json", "wsgi.errors": io.StringIO()}
    if key:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return environ


def _serve(app, environ: dict) -> tuple[int, dict]:
    out: dict = {}

    def start_response(status, headers, exc_info=None):
        out["status"] = int(status.split()[0])
    body = b"".join(app(environ, start_response))
    return out["status"], json.loads(body)


def test_a_declared_length_over_the_limit_is_413_before_reading(api):
    limit = api.ctx.config.hub.http.max_body_bytes
    for path in (f"{STORE}/sales", "/callbacks/wechat_pay", "/callbacks/local_delivery", "/api/v1/orders",
                 "/admin/api/flash-sales", "/api/v1/erp/orders/ack", "/no/such/path"):
        stream = Endless()
        environ = {**_chunked_environ(path, stream), "CONTENT_LENGTH": str(limit + 1)}
        del environ["HTTP_TRANSFER_ENCODING"]
        code, body = _serve(api.app, environ)
        assert code == 413 and body["error"] == "body_too_large" and stream.read_bytes == 0, path


def test_a_chunked_body_is_cut_off_at_the_limit(api):
    api.stock(10)
    limit = api.ctx.config.hub.http.max_body_bytes
    for path in (f"{STORE}/sales", "/callbacks/express", "/callbacks/local_delivery"):
        stream = Endless()
        code, body = _serve(api.app, _chunked_environ(path, stream))
        assert code == 413 and body["error"] == "body_too_large", path
        assert limit < stream.read_bytes <= limit + 64 * 1024                 # read to the limit, no further
    assert api.level().on_hand == 10


def test_a_chunked_body_within_the_limit_is_read_and_applied_over_real_http(api):
    """werkzeug's server on loopback: a chunked sale is applied; an endless one gets 413."""
    api.stock(10)
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sale = json.dumps({"receipt_id": "R-CHUNKED", "sold_at": iso(api, -1),
                           "lines": [{"sku": "TEA-001", "qty": 2}]}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", f"{STORE}/sales", body=iter([sale[:10], sale[10:]]), encode_chunked=True,
                     headers={"Authorization": f"Bearer {S1}", "Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 201, r.read()
        assert api.level().on_hand == 8
        conn.close()

        limit = api.ctx.config.hub.http.max_body_bytes
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.putrequest("POST", f"{STORE}/sales")
        for k, v in {"Authorization": f"Bearer {S1}", "Transfer-Encoding": "chunked"}.items():
            conn.putheader(k, v)
        conn.endheaders()
        chunk = b"x" * 65536
        try:
            for _ in range(limit // len(chunk) + 4):
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:              # the server answered and closed while we were still sending
            pass
        assert conn.getresponse().status == 413
        conn.close()
    finally:
        server.shutdown()


# -- finding 9: the buyer's timeline, in order, each event once, the end last, no booking numbers -----------

def test_the_buyers_delivery_timeline_reads_in_order_once_with_no_booking_reference(api, courier):
    from hub.domain.order_states import OrderStatus
    from hub.services import orders
    from hub.storage.tables import Shipment
    api.stock(10)
    oid = api.order("tl-1", kind="delivery")
    api.pay(oid)
    with api.ctx.uow() as uow:                 # what flows/delivery.py writes when the courier booked
        order = orders.get(uow, oid)
        orders.transition(uow, order, OrderStatus.DISPATCHED, "local_delivery",
                          "rider booked from Jing'an Flagship (DADA-77001, fee 500 fen)")
        uow.session.add(Shipment(order_id=oid, kind="local", carrier="local_delivery", shipment_ref="DADA-77001",
                                 status="booked"))
        uow.commit()
    t = int(time.time()) - 3600                 # the courier's clock is an hour behind ours
    for i, st in enumerate((1, 2, 8, 100, 3, 4)):   # booked, rider_assigned twice (2 and 8), at store, ...
        rider(courier, oid, *([] if st == 1 else [st]), ref="DADA-77001")       # what its status query says
        r = api.client.post("/callbacks/local_delivery", data=dada(oid, st, t + i, ref="DADA-77001"))
        assert r.status_code == 200, r.json
    o = api.get(f"/api/v1/orders/{oid}").json
    assert o["status"] == "completed"
    steps = [e["status"] for e in o["timeline"]]
    assert steps[0] == "pending_payment" and steps[-1] == "completed", steps
    assert steps == ["pending_payment", "paid", "allocated", "dispatched", "booked", "rider_assigned",
                     "rider_at_store", "picked_up", "collected", "delivered", "completed"], steps
    times = [e["at"] for e in o["timeline"]]
    assert times == sorted(times)
    assert "DADA-77001" not in json.dumps(o["timeline"])
    assert "139****2222" in json.dumps(o["timeline"], ensure_ascii=False)       # the rider, masked, stays
    # the operator's view keeps the reference
    from .conftest import OPS_KEY
    ops = api.get(f"/admin/api/orders/{oid}", key=OPS_KEY).json
    assert "DADA-77001" in json.dumps(ops["timeline"])


def test_a_nul_character_anywhere_is_400_not_500(api):
    """PostgreSQL cannot hold a NUL: a path id, a query value or a body string carrying one was a 500."""
    from .conftest import OPS_KEY, order_body
    api.stock(10)
    assert api.get("/api/v1/orders/O1%00").status_code == 400
    assert api.get("/admin/api/orders", key=OPS_KEY, query_string={"store": "S001\x00"}).status_code == 400
    body = order_body()
    body["buyer"] = {**body["buyer"], "id": "buyer\x00"}        # a copy: BUYER is shared by every test
    r = api.post("/api/v1/orders", body, headers={"Idempotency-Key": "nul-1"})
    assert r.status_code == 400 and r.json["error"] == "nul_character"
    r = api.client.post("/callbacks/local_delivery", data=b'{"client_id": "a\\u0000"}')
    assert r.status_code == 400
    assert movements(api) == 6                  # the seeded counts only: nothing else was written


def test_a_non_ascii_authorization_header_is_401(api):
    from .conftest import OPS_KEY
    for value in ("Basic é", "Basic b3BzOsOp", "Bearer é"):          # b3BzOsOp: "ops:é"
        assert api.get("/admin/api/flow", key=None, headers={"Authorization": value}).status_code == 401, value
    assert api.get("/admin/api/flow", key=OPS_KEY).status_code == 200


def test_a_payment_dated_ahead_of_our_clock_is_recorded_as_paid_now(api):
    from datetime import UTC, datetime

    from hub.services import orders
    api.stock(10)
    oid = api.order()
    with api.ctx.uow() as uow:
        order = orders.get(uow, oid, lock=True)
        orders.mark_paid(uow, order, "wechat_pay", "tx-future", at=datetime.now(UTC) + timedelta(days=1))
        uow.commit()
    with api.ctx.uow() as uow:
        order = orders.get(uow, oid)
        latest = datetime.now(UTC) + timedelta(seconds=1)
        assert order.paid_at <= latest and all(t.at <= latest for t in order.transitions)


def test_json_nested_too_deeply_is_400_on_every_route(api):
    deep = b"[" * 100_000 + b"]" * 100_000            # within the size limit; json.loads would exhaust the stack
    for path in ("/api/v1/orders", "/callbacks/local_delivery", "/callbacks/wechat_pay", f"{STORE}/sales"):
        r = api.client.post(path, data=deep, headers={"Authorization": f"Bearer {S1}"})
        assert r.status_code == 400, (path, r.status_code)
    nested: dict = {"x": 1}
    for _ in range(100):
        nested = {"x": nested}
    assert api.post(f"{STORE}/sales", nested, key=S1).json["error"] == "nested_too_deeply"

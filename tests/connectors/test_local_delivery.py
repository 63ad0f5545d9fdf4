"""The local-delivery connector against the Dada-style simulator; callbacks over real HTTP."""
from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime

import pytest

from connectors.base import MappingError, MemoryBinder, PermanentError, RetryPolicy, SignatureError, TransientError
from connectors.binding import SystemBinder
from connectors.local_delivery import LocalDeliveryConnector, mask_phone
from connectors.registry import build_connector
from hub.config import LocationConfig
from hub.domain.model import Address, Buyer, Fulfillment, FulfillmentType, OrderLine, OrderSnapshot, TrackingStatus
from mappings.engine import load_mapping
from sandbox.base import Response
from sandbox.credentials import sandbox_env
from sandbox.local_delivery import LocalDeliverySimulator, seed_binder

from .conftest import system_config

FAST = dict(initial=0.01, maximum=0.05, jitter=0.0)
ENV = sandbox_env()
S001 = LocationConfig(id="S001", kind="store", name="Jing'an Flagship", address="1 West Nanjing Road",
                      lat=31.2291, lng=121.4484, pickup=True, delivery_radius_km=5, pos_key="k" * 8)
S009 = S001.model_copy(update={"id": "S009"})
S = TrackingStatus


@pytest.fixture(scope="module")
def module_sim():
    with LocalDeliverySimulator.from_env(ENV) as s:
        s.step_s = None                # tests move deliveries by hand
        yield s


@pytest.fixture
def sim(module_sim):
    module_sim.reset()
    return module_sim


def binder() -> MemoryBinder:
    return seed_binder(MemoryBinder())


def connector(sim, attempts=4, **overrides) -> LocalDeliveryConnector:
    """Built as the hub builds it: config.yaml's `local_delivery` block, the sandbox's credentials."""
    return build_connector("local_delivery", system_config("local_delivery", sim, **overrides), binder(),
                           RetryPolicy(attempts=attempts, **FAST))


def order(order_id="O-8001", lines=(OrderLine("TEA-001", 2, 12800),)) -> OrderSnapshot:
    address = Address("500 Weihai Road, Shanghai", 31.2330, 121.4600, "Li Lei", "13800001111")
    return OrderSnapshot(
        order_id=order_id, channel="miniprogram", status="allocated",
        fulfillment=Fulfillment(FulfillmentType.DELIVERY, "S001", address), lines=tuple(lines),
        buyer=Buyer("U-7", "Li Lei", "13800001111"), total_fen=sum(ln.qty * ln.unit_price_fen for ln in lines),
        location_id="S001", created_at=datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


def hub_side(conn: LocalDeliveryConnector, got: list):
    """What the hub's /callbacks/local_delivery does: verify, parse, answer 200 (or 400 with a reason)."""
    def handle(req):
        try:
            got.append(conn.parse_callback(req.body))
        except (SignatureError, MappingError) as exc:
            return Response(400, {"error": str(exc)})
        return Response(200, conn.callback_reply())
    return handle


def booked(sim, sink, conn, order_id):
    quote = conn.quote(order(order_id), S001, sink.url("local_delivery"))
    return quote, conn.book(quote)


# -- quote, book, cancel ----------------------------------------------------------------------

def test_quote_sends_a_signed_fee_query_in_dadas_terms(sim, sink):
    quote = connector(sim).quote(order("O-8001"), S001, sink.url("local_delivery"))
    sent = sim.requests_to("/api/order/queryDeliverFee")[0].json()
    assert set(sent) == {"app_key", "timestamp", "format", "v", "source_id", "body", "signature"}
    body = json.loads(sent["body"])
    assert (body["shop_no"], body["origin_id"], body["cargo_price"], body["city_code"]) == \
        ("11047059", "O-8001", 256.0, "021")
    assert (body["receiver_name"], body["receiver_phone"], body["receiver_lat"]) == ("Li Lei", "13800001111", 31.233)
    assert body["callback"] == sink.url("local_delivery")
    delivery = sim.deliveries["O-8001"]
    assert quote.quote_id == delivery.delivery_no and quote.fee_fen == int(delivery.fee * 100)
    assert quote.distance_m == int(round(delivery.distance_m)) and quote.distance_m > 500


def test_unbound_store_never_leaves_the_hub(sim, sink):
    with pytest.raises(MappingError, match="unmapped store") as err:
        connector(sim).quote(order(), S009, sink.url("local_delivery"))
    assert err.value.value == "S009" and sim.received == []


def test_book_then_book_again_is_one_booking(sim, sink):
    conn = connector(sim)
    quote, booking = booked(sim, sink, conn, "O-8002")
    assert (booking.shipment_ref, booking.fee_fen, booking.carrier) == (quote.quote_id, quote.fee_fen,
                                                                       "local_delivery")
    assert conn.book(quote) == booking                               # Dada: 2065 already processed
    assert sim.deliveries["O-8002"].history == [1]                   # one booking, one "waiting" callback


def test_expired_quote_is_refused_with_dadas_reason(sim, sink):
    sim.quote_ttl_s = 0
    quote = connector(sim).quote(order("O-8003"), S001, sink.url("local_delivery"))
    time.sleep(0.01)
    with pytest.raises(PermanentError, match="code 2062"):
        connector(sim).book(quote)
    assert len(sim.requests_to("/api/order/addAfterQuery")) == 1


def test_bad_secret_is_permanent_and_not_retried(sim, sink):
    with pytest.raises(PermanentError, match="code 2003 签名错误"):
        connector(sim, app_secret="wrong").quote(order(), S001, sink.url("local_delivery"))
    assert len(sim.received) == 1


def test_busy_and_rate_limit_codes_are_retried_to_success(sim, sink):
    sim.busy_next(1, code=-1)
    conn = connector(sim)
    quote = conn.quote(order("O-8004"), S001, sink.url("local_delivery"))
    sim.busy_next(1, code=9939, msg="频率太高")
    conn.book(quote)
    assert len(sim.requests_to("/api/order/queryDeliverFee")) == 2
    assert len(sim.requests_to("/api/order/addAfterQuery")) == 2
    assert sim.deliveries["O-8004"].booked


def test_http_errors_until_attempts_run_out_are_transient(sim, sink):
    sim.faults.fail_next, sim.faults.error_status = 5, 503
    with pytest.raises(TransientError, match="HTTP 503"):
        connector(sim, attempts=3).quote(order(), S001, sink.url("local_delivery"))
    assert len(sim.received) == 3


def test_cancel_calls_back_and_is_idempotent(sim, sink):
    conn, got = connector(sim), []
    sink.handler = hub_side(conn, got)
    booked(sim, sink, conn, "O-8005")
    sim.advance("O-8005", 2)
    conn.cancel("O-8005", "buyer changed their mind")
    conn.cancel("O-8005", "buyer changed their mind")               # 2076 already cancelled: fine
    assert [e.status for e in got] == [S.BOOKED, S.RIDER_ASSIGNED, S.CANCELLED]
    assert got[-1].detail == "buyer changed their mind"
    cancel = json.loads(sim.requests_to("/api/order/formalCancel")[0].json()["body"])
    assert cancel == {"order_id": "O-8005", "cancel_reason_id": 10000, "cancel_reason": "buyer changed their mind"}


def test_cancel_while_delivering_is_refused(sim, sink):
    conn = connector(sim)
    booked(sim, sink, conn, "O-8006")
    sim.advance("O-8006", 3)
    with pytest.raises(PermanentError, match="code 2050"):
        conn.cancel("O-8006", "too late")


# -- callbacks ----------------------------------------------------------------------------------

def test_callbacks_follow_the_rider_to_the_door(sim, sink):
    conn, got = connector(sim), []
    sink.handler = hub_side(conn, got)
    quote, _ = booked(sim, sink, conn, "O-8101")
    for status in (2, 100, 3, 4):
        assert sim.advance("O-8101", status)[0].status == 200
    assert [e.status for e in got] == [S.BOOKED, S.RIDER_ASSIGNED, S.RIDER_AT_STORE, S.COLLECTED, S.DELIVERED]
    assert {(e.shipment_ref, e.order_ref) for e in got} == {(quote.quote_id, "O-8101")}
    assert got[0].rider_name is None and (got[1].rider_name, got[1].rider_phone) == ("张骑士", "13911112222")
    assert len({e.external_id for e in got}) == 5
    assert [e.at for e in got] == sorted(e.at for e in got) and got[0].at < got[-1].at


def test_duplicate_and_out_of_order_callbacks_carry_what_dedupes_and_orders_them(sim, sink):
    conn, got = connector(sim), []
    sink.handler = hub_side(conn, got)
    booked(sim, sink, conn, "O-8102")
    sim.faults.duplicate_callbacks = True
    sim.advance("O-8102", 2)
    sim.faults.duplicate_callbacks, sim.faults.reorder_callbacks = False, True
    assert sim.advance("O-8102", 3) == []                        # held back
    sim.advance("O-8102", 4)                                      # delivered arrives before delivering
    assert [e.status for e in got] == [S.BOOKED, S.RIDER_ASSIGNED, S.RIDER_ASSIGNED, S.DELIVERED, S.COLLECTED]
    assert got[1] == got[2]                                       # the duplicate is the same event
    unique = {e.external_id: e for e in got}
    assert len(unique) == 4
    assert max(unique.values(), key=lambda e: e.at).status == S.DELIVERED


def test_bad_signature_is_refused_with_a_reason(sim, sink):
    conn, got = connector(sim), []
    sink.handler = hub_side(conn, got)
    booked(sim, sink, conn, "O-8103")
    good = sim.callbacks[-1].body
    forged = {**good, "order_status": 4, "update_time": good["update_time"] + 5}   # signature not redone
    with pytest.raises(SignatureError, match="does not verify"):
        conn.parse_callback(json.dumps(forged).encode())
    with pytest.raises(SignatureError, match="without signature"):
        conn.parse_callback(json.dumps({k: v for k, v in good.items() if k != "signature"}).encode())
    with pytest.raises(MappingError, match="not JSON"):
        conn.parse_callback(b"order_status=4")
    posted = sim._post(sink.url("local_delivery"), forged)     # the simulator posts the forgery for real
    assert posted.status == 400 and "does not verify" in posted.reply


def test_unknown_status_is_a_mapping_error(sim, sink):
    conn, got = connector(sim), []
    sink.handler = hub_side(conn, got)
    booked(sim, sink, conn, "O-8104")
    callback = sim.advance("O-8104", 6)[0]
    assert callback.status == 400 and "unknown status code" in callback.reply and "6" in callback.reply
    with pytest.raises(MappingError) as err:
        conn.parse_callback(json.dumps(callback.body).encode())
    assert (err.value.field, err.value.value) == ("order_status", 6)


def test_the_clock_moves_a_booking_and_riders_can_give_up(sink):
    clock = LocalDeliverySimulator.from_env(ENV)
    clock.step_s = 0.02
    with clock as clock_sim:
        conn = connector(clock_sim)
        for order_id, fate, final in (("O-8201", "delivered", 4), ("O-8202", "cancelled", 5),
                                      ("O-8203", "expired", 7)):
            got: list = []
            sink.handler = hub_side(conn, got)
            clock_sim.knobs.fate = fate
            booked(clock_sim, sink, conn, order_id)
            deadline = time.time() + 3
            while clock_sim.status_of(order_id) != final and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)
            expected = {"delivered": [S.BOOKED, S.RIDER_ASSIGNED, S.RIDER_AT_STORE, S.COLLECTED, S.DELIVERED],
                        "cancelled": [S.BOOKED, S.RIDER_ASSIGNED, S.CANCELLED],
                        "expired": [S.BOOKED, S.EXPIRED]}[fate]
            assert [e.status for e in got] == expected, fate


def test_callback_reply_and_phone_masking(sim):
    assert connector(sim).callback_reply() == {"code": 0, "msg": "success"}
    assert mask_phone("13911112222") == "139****2222" and mask_phone("") == ""


# -- mapping round trips ----------------------------------------------------------------------

def test_fee_query_mapping_round_trips():
    m, b = load_mapping("local_delivery"), SystemBinder(binder(), "local_delivery")
    canonical = {"store_id": "S002", "order_id": "O-1", "city_code": "021", "cargo_fen": 25650,
                 "callback": "http://hub/callbacks/local_delivery", "weight_g": 1250,
                 "receiver": {"name": "Li", "address": "A", "lat": 31.2, "lng": 121.4, "phone": "138"},
                 "lines": [{"sku": "TEA-001", "name": "TEA-001", "qty": 2}]}
    payload = m.outbound("fee_query", canonical, b)
    assert payload["shop_no"] == "11047060" and payload["cargo_price"] == 256.5
    assert payload["cargo_weight"] == 1.25                    # Dada's kg, from the basket's grams
    assert m.inbound("fee_query", payload, b) == canonical


def test_status_callback_mapping_round_trips():
    m = load_mapping("local_delivery")
    canonical = {"shipment_ref": "Dada1", "order_ref": "O-1", "status": "rider_at_store",
                 "at": datetime(2026, 11, 25, 2, 0, tzinfo=UTC), "rider_name": "张骑士",
                 "rider_phone": "13911112222", "cancel_reason": ""}
    payload = m.outbound("status_callback", canonical)
    assert payload["order_status"] == 100 and payload["update_time"] == 1795572000
    assert m.inbound("status_callback", payload) == canonical


def test_callback_signature_is_md5_of_sorted_values():
    body = {"client_id": "Dada1", "order_id": "O-1", "update_time": 1795572000}
    expected = hashlib.md5("".join(sorted(["Dada1", "O-1", "1795572000"])).encode()).hexdigest()
    from sandbox.local_delivery import callback_signature
    assert callback_signature(**body) == expected


# -- the status query: what a callback only claims ----------------------------------------------

def test_query_answers_the_deliverys_real_state_from_dadas_status_api(sim, sink):
    conn = connector(sim)
    assert conn.query("O-8301") is None                              # never booked: Dada's 2005
    quote, _ = booked(sim, sink, conn, "O-8301")
    sim.advance("O-8301", 2, update_time=1795572000)
    sim.advance("O-8301", 3, update_time=1795572600)
    state = conn.query("O-8301")
    sent = sim.requests_to("/api/order/status/query")[-1].json()
    assert json.loads(sent["body"]) == {"order_id": "O-8301"} and sent["signature"]   # signed with our secret
    assert (state.carrier, state.order_ref, state.status) == ("local_delivery", "O-8301", S.COLLECTED)
    assert state.at == datetime.fromtimestamp(1795572600, UTC)       # fetchTime: when the rider took the goods
    assert (state.rider_name, state.rider_phone, state.fee_fen) == ("张骑士", "13911112222", quote.fee_fen)
    sim.advance("O-8301", 9)
    assert conn.query("O-8301").status == S.RETURNING and conn.query("O-8301").at is None


def test_query_of_an_unreachable_courier_is_transient_never_no_booking(sim, sink):
    conn = connector(sim, attempts=2)
    booked(sim, sink, conn, "O-8302")
    sim.faults.fail_next, sim.faults.error_status = 5, 503
    with pytest.raises(TransientError, match="HTTP 503"):
        conn.query("O-8302")
    sim.busy_next(2, code=-1)
    with pytest.raises(TransientError, match="code -1"):
        conn.query("O-8302")


def test_cancel_refusal_carries_dadas_code(sim, sink):
    conn = connector(sim)
    booked(sim, sink, conn, "O-8303")
    sim.advance("O-8303", 3)
    with pytest.raises(PermanentError) as err:
        conn.cancel("O-8303", "buyer changed their mind")
    assert (err.value.code, err.value.outcome) == (2050, "permanent")


# -- tip and cancel rules (issue 22) ----------------------------------------------------------

def test_add_tip_sets_dadas_total_tip_while_nobody_took_the_order(sim, sink):
    conn = connector(sim)
    booked(sim, sink, conn, "O-8201")
    assert conn.add_tip("O-8201", 250, 250) == 250
    assert conn.add_tip("O-8201", 150, 400) == 400        # Dada takes the total, not the increment
    assert str(sim.deliveries["O-8201"].tips) == "4.0"
    sim.advance("O-8201", 2)
    with pytest.raises(PermanentError, match="code 2071"):
        conn.add_tip("O-8201", 100, 500)


def test_cancel_terms_read_from_the_status_query(sim, sink):
    conn = connector(sim)
    booked(sim, sink, conn, "O-8202")
    assert (conn.cancel_terms("O-8202").allowed, conn.cancel_terms("O-8202").penalty_fen) == (True, 0)
    sim.advance("O-8202", 100)
    assert conn.cancel_terms("O-8202").penalty_fen == 200
    sim.advance("O-8202", 3)
    assert not conn.cancel_terms("O-8202").allowed


# -- Dada's quote path and re-dispatch (issue 22) ------------------------------------------------

def test_the_quotes_delivery_no_books_the_fee_it_quoted(sim, sink):
    conn = connector(sim)
    quote, booking = booked(sim, sink, conn, "O-8401")
    assert sim.requests_to("/api/order/addAfterQuery")[-1].json()["body"] == \
        json.dumps({"deliveryNo": quote.quote_id}, separators=(",", ":"))
    assert (booking.shipment_ref, booking.fee_fen) == (quote.quote_id, quote.fee_fen)
    assert sim.requests_to("/api/order/reAddOrder") == []


@pytest.mark.parametrize("gone", [5, 7])             # cancelled by Dada's rider, or nobody took it in time
def test_an_order_dada_dropped_is_published_again_with_re_add_order(sim, sink, gone):
    conn, oid = connector(sim), f"O-8402-{gone}"
    first, _ = booked(sim, sink, conn, oid)
    sim.advance(oid, gone)
    again, booking = booked(sim, sink, conn, oid)
    sent = json.loads(sim.requests_to("/api/order/reAddOrder")[-1].json()["body"])
    assert (sent["origin_id"], sent["shop_no"]) == (oid, "11047059")
    assert booking.shipment_ref == again.quote_id != first.quote_id and booking.fee_fen == again.fee_fen
    held = conn.query(oid)
    assert held.status == "booked" and sim.deliveries[oid].delivery_no == again.quote_id


def test_re_add_order_of_a_live_order_is_refused(sim, sink):
    conn = connector(sim)
    quote, _ = booked(sim, sink, conn, "O-8403")
    with pytest.raises(PermanentError, match="code 2130"):
        conn.retry.call(conn._call, "re_add", dict(quote.terms["order"]))

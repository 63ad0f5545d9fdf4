"""The express connector against the SF/Kuaidi100 simulator, pushes posted over real HTTP."""
from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.base import MappingError, MemoryBinder, PermanentError, RetryPolicy, SignatureError
from connectors.express import ExpressConnector
from connectors.registry import build_connector
from hub.config import LocationConfig
from hub.domain.model import (
    Address,
    Buyer,
    Fulfillment,
    FulfillmentType,
    OrderLine,
    OrderSnapshot,
    TrackingEvent,
    TrackingStatus,
)
from mappings.engine import load_mapping
from sandbox.base import Response
from sandbox.credentials import sandbox_env
from sandbox.express import ExpressSimulator

from .conftest import system_config

CST = timezone(timedelta(hours=8))
FAST = dict(initial=0.01, maximum=0.05, jitter=0.0)
ENV = sandbox_env()
SALT = ENV["HUB_KUAIDI100_SALT"]
WH01 = LocationConfig(id="WH01", kind="warehouse", name="Jiading Warehouse",
                      address="99 Logistics Park, Jiading, Shanghai", lat=31.38, lng=121.27, phone="021-59990001")
PHONE = "13700002222"                    # the receiver's, as Kuaidi100 wants it for SF

@pytest.fixture(scope="module")
def module_sim():
    with ExpressSimulator.from_env(ENV) as s:
        s.auto_step_s = None           # tests move parcels by hand
        yield s

@pytest.fixture
def sim(module_sim):
    module_sim.reset()
    return module_sim

def connector(sim, attempts=4, **overrides) -> ExpressConnector:
    """Built as the hub builds it: config.yaml's `express` block, the sandbox's credentials."""
    return build_connector("express", system_config("express", sim, **overrides), MemoryBinder(),
                           RetryPolicy(attempts=attempts, **FAST))

def order(order_id="O-7001", address=Address("8 Century Avenue, Shanghai", 31.24, 121.50, "Han Meimei",
                                             "13700002222")) -> OrderSnapshot:
    return OrderSnapshot(
        order_id=order_id, channel="miniprogram", status="allocated",
        fulfillment=Fulfillment(FulfillmentType.EXPRESS, address=address),
        lines=(OrderLine("TEA-001", 2, 12800),), buyer=Buyer("U-9", "Han Meimei", "13700002222"),
        total_fen=25600, location_id="WH01", created_at=datetime(2026, 11, 25, 2, 0, tzinfo=UTC))

def msg_data(req) -> dict:
    return json.loads(req.form()["msgData"])

def at(minute: int) -> datetime:
    return datetime(2026, 11, 25, 10, minute, tzinfo=CST)

# -- waybills ---------------------------------------------------------------------------------

def test_create_waybill_books_a_signed_order(sim):
    booking = connector(sim).create_waybill(order("O-7001"), WH01)
    assert booking.shipment_ref.startswith("SF") and booking.carrier == "express"
    assert sim.orders["O-7001"] == booking.shipment_ref
    sent = msg_data(sim.requests_to("/std/service")[0])
    sender, receiver = sent["contactInfoList"]
    assert (sender["contactType"], sender["address"]) == (1, WH01.address)
    assert (receiver["contactType"], receiver["contact"], receiver["mobile"]) == (2, "Han Meimei", "13700002222")
    assert sent["cargoDetails"] == [{"name": "TEA-001", "count": 2, "unit": "pcs"}]
    assert sent["cargoDeclaredValue"] == 256.0

def test_same_order_twice_gets_the_same_waybill(sim):
    conn = connector(sim)
    first = conn.create_waybill(order("O-7002"), WH01)
    again = conn.create_waybill(order("O-7002"), WH01)
    assert again.shipment_ref == first.shipment_ref
    codes = [r.form()["serviceCode"] for r in sim.requests_to("/std/service")]
    assert codes == ["EXP_RECE_CREATE_ORDER", "EXP_RECE_CREATE_ORDER", "EXP_RECE_SEARCH_ORDER_RESP"]

def test_flow_control_and_5xx_are_retried_to_success(sim):
    sim.api_result_next = ["A1005"]
    sim.faults.fail_next = 1
    booking = connector(sim).create_waybill(order("O-7003"), WH01)
    assert sim.orders["O-7003"] == booking.shipment_ref
    assert len(sim.requests_to("/std/service")) == 3

def test_bad_checkword_is_permanent_and_not_retried(sim):
    with pytest.raises(PermanentError, match="A1006"):
        connector(sim, checkword="wrong").create_waybill(order("O-7004"), WH01)
    assert len(sim.requests_to("/std/service")) == 1 and "O-7004" not in sim.orders

def test_order_without_address_is_refused_before_calling(sim):
    with pytest.raises(MappingError, match="fulfillment.address"):
        connector(sim).create_waybill(order("O-7005", address=None), WH01)
    nameless = order("O-7006", address=Address("8 Century Avenue", 31.2, 121.5))
    bare = OrderSnapshot(**{**nameless.__dict__, "buyer": Buyer("U-0", "Nobody")})
    with pytest.raises(MappingError, match="receiver.phone"):
        connector(sim).create_waybill(bare, WH01)
    assert sim.requests_to("/std/service") == []

# -- subscribing and pushes -------------------------------------------------------------------

def hub_side(conn: ExpressConnector, got: list[TrackingEvent]):
    """What the hub's /callbacks/express does: verify, parse, answer."""
    def handle(req):
        try:
            got.extend(conn.parse_tracking_push(req.form()))
        except (SignatureError, MappingError) as exc:
            return Response(400, {**conn.push_reply(False), "message": str(exc)})
        return Response(200, conn.push_reply())
    return handle

def subscribed(sim, sink, conn, order_id):
    booking = conn.create_waybill(order(order_id), WH01)
    conn.subscribe_tracking(booking.shipment_ref, sink.url("express"), phone=PHONE)
    return booking.shipment_ref

def test_subscribe_registers_the_callback_and_is_idempotent(sim, sink):
    conn = connector(sim)
    waybill = subscribed(sim, sink, conn, "O-7101")
    conn.subscribe_tracking(waybill, sink.url("express"), phone=PHONE)     # 501 duplicate: still fine
    sub = sim.subscriptions[waybill]
    assert (sub.callback_url, sub.salt, sub.company) == (sink.url("express"), SALT, "shunfeng")
    with pytest.raises(PermanentError, match="returnCode 600"):
        connector(sim, key="wrong").subscribe_tracking(waybill, sink.url("express"), phone=PHONE)

def test_pushes_are_verified_and_carry_the_history(sim, sink):
    conn, got = connector(sim), []
    sink.handler = hub_side(conn, got)
    waybill = subscribed(sim, sink, conn, "O-7102")
    assert sim.advance(waybill, 1, at=at(0))[0].accepted
    assert sim.advance(waybill, 0, at=at(30))[0].accepted
    assert sim.advance(waybill, 5, at=at(50))[0].accepted
    assert [e.status for e in got] == [
        TrackingStatus.COLLECTED,
        TrackingStatus.IN_TRANSIT, TrackingStatus.COLLECTED,
        TrackingStatus.OUT_FOR_DELIVERY, TrackingStatus.IN_TRANSIT, TrackingStatus.COLLECTED]
    assert {e.shipment_ref for e in got} == {waybill}
    unique = {e.external_id: e for e in got}
    assert len(unique) == 3                      # the repeated history dedupes by external_id
    assert [e.at for e in sorted(unique.values(), key=lambda e: e.at)] == [at(0), at(30), at(50)]
    assert "王师傅" in got[3].detail

def test_duplicate_and_out_of_order_pushes_settle_on_the_latest_state(sim, sink):
    conn, got = connector(sim), []
    sink.handler = hub_side(conn, got)
    waybill = subscribed(sim, sink, conn, "O-7103")
    sim.faults.duplicate_callbacks = True
    sim.advance(waybill, 1, at=at(0))
    sim.faults.duplicate_callbacks, sim.faults.reorder_callbacks = False, True
    assert sim.advance(waybill, 5, at=at(40)) == []          # held back
    pushes = sim.advance(waybill, 3, at=at(55))              # arrives first, then the held one
    states = [json.loads(p.form["param"])["lastResult"]["state"] for p in pushes]
    assert states == ["3", "5"] and all(p.accepted for p in pushes)
    assert len(sink.posts()) == 4
    latest = max({e.external_id: e for e in got}.values(), key=lambda e: e.at)
    assert latest.status == TrackingStatus.DELIVERED and latest.at == at(55)
    assert len({e.external_id for e in got}) == 3

def test_bad_sign_is_refused_with_a_reason(sim, sink):
    hub_conn, got = connector(sim, salt="not-the-salt-we-gave"), []
    sink.handler = hub_side(hub_conn, got)
    waybill = subscribed(sim, sink, connector(sim), "O-7104")
    push = sim.advance(waybill, 1)[0]
    assert push.status == 400 and push.reply["result"] is False and "does not verify" in push.reply["message"]
    assert got == []
    form = dict(push.form)
    form["param"] = form["param"].replace('"state": "1"', '"state": "3"')   # tampered in transit
    with pytest.raises(SignatureError):
        connector(sim).parse_tracking_push(form)
    with pytest.raises(SignatureError, match="without param or sign"):
        connector(sim).parse_tracking_push({"param": form["param"]})

def signed(param: dict) -> dict[str, str]:
    text = json.dumps(param, ensure_ascii=False)
    return {"param": text, "sign": hashlib.md5((text + SALT).encode()).hexdigest().upper()}

def test_unknown_state_or_bad_payload_is_a_mapping_error(sim):
    conn = connector(sim)
    step = {"time": "2026-11-25 10:00:00", "ftime": "2026-11-25 10:00:00", "context": "x", "status": "在途"}
    with pytest.raises(MappingError, match="state") as err:
        conn.parse_tracking_push(signed({"lastResult": {"state": "9", "nu": "SF1", "data": [step]}}))
    assert err.value.value == "9"
    with pytest.raises(MappingError, match="ftime"):
        conn.parse_tracking_push(signed({"lastResult": {"state": "0", "nu": "SF1",
                                                        "data": [{**step, "ftime": "yesterday"}]}}))
    with pytest.raises(MappingError, match="lastResult"):
        conn.parse_tracking_push(signed({"status": "abort"}))

def test_poll_returns_the_same_events_as_a_push(sim, sink):
    conn = connector(sim)
    waybill = conn.create_waybill(order("O-7105"), WH01).shipment_ref
    assert conn.poll_tracking(waybill, PHONE) == []          # nothing scanned yet: "no result"
    sim.advance(waybill, 1, at=at(0))
    sim.advance(waybill, 4, at=at(59))
    events = conn.poll_tracking(waybill, PHONE)
    assert [(e.status, e.at) for e in events] == [(TrackingStatus.RETURNED, at(59)),
                                                 (TrackingStatus.COLLECTED, at(0))]
    sim.faults.fail_next = 2
    assert conn.poll_tracking(waybill, PHONE) == events      # 503s retried, same ids again
    with pytest.raises(PermanentError, match="returnCode 503"):
        connector(sim, key="wrong").poll_tracking(waybill, PHONE)

def test_push_reply_is_what_kuaidi100_expects(sim):
    assert connector(sim).push_reply() == {"result": True, "returnCode": "200", "message": "成功"}
    assert connector(sim).push_reply(False)["result"] is False

def test_clock_walks_a_subscribed_parcel_to_signed(sink):
    got: list[TrackingEvent] = []
    clock = ExpressSimulator.from_env(ENV)
    clock.auto_step_s = 0.02
    with clock as clock_sim:
        conn = connector(clock_sim)
        sink.handler = hub_side(conn, got)
        subscribed(clock_sim, sink, conn, "O-7201")
        deadline = time.time() + 3
        while len(clock_sim.pushes) < 4 and time.time() < deadline:
            time.sleep(0.02)
    assert [p.accepted for p in clock_sim.pushes] == [True] * 4
    assert got[-4].status == TrackingStatus.DELIVERED

# -- mapping round trips ----------------------------------------------------------------------

def test_waybill_mapping_round_trips():
    m = load_mapping("express")
    shipment = {"order_id": "O-1", "sender": {"company": "WH", "name": "WH", "phone": "021-1", "address": "A"},
                "receiver": {"name": "R", "phone": "137", "address": "B"}, "declared_fen": 12345,
                "lines": [{"sku": "TEA-001", "qty": 2, "unit": "box"}]}
    assert m.inbound("waybill_order", m.outbound("waybill_order", shipment)) == shipment

def test_tracking_mapping_round_trips():
    m = load_mapping("express")
    track = {"waybill_no": "SF1", "company": "shunfeng", "state": "delivered",
             "events": [{"at": at(5), "detail": "signed", "status": "delivered"},
                        {"at": at(1), "detail": "picked", "status": "collected"}]}
    assert m.inbound("tracking", m.outbound("tracking", track)) == track


# -- phones and customs (issue 12) ---------------------------------------------------------------

def test_sf_sender_contact_carries_the_locations_phone(sim):
    connector(sim).create_waybill(order("O-7201"), WH01)
    sender = next(c for c in msg_data(sim.received[-1])["contactInfoList"] if c["contactType"] == 1)
    assert sender["tel"] == "021-59990001"


def test_sf_refuses_a_sender_without_a_phone(sim):
    no_phone = WH01.model_copy(update={"phone": ""})
    with pytest.raises(PermanentError, match="1012"):
        connector(sim).create_waybill(order("O-7202"), no_phone)


def test_kuaidi100_subscribe_and_query_send_the_phone_sf_requires(sim, sink):
    conn = connector(sim)
    waybill = subscribed(sim, sink, conn, "O-7203")
    sim.advance(waybill, 1, at=at(0))
    assert [e.status for e in conn.poll_tracking(waybill, PHONE)] == [TrackingStatus.COLLECTED]
    subscribe = json.loads(sim.requests_to("/poll")[-1].form()["param"])
    query = json.loads(sim.requests_to("/poll/query.do")[-1].form()["param"])
    assert subscribe["parameters"]["phone"] == PHONE and query["phone"] == PHONE


def test_without_a_phone_sf_tracking_fails_before_calling(sim, sink):
    conn = connector(sim)
    waybill = conn.create_waybill(order("O-7204"), WH01).shipment_ref
    with pytest.raises(MappingError, match="needs a phone for shunfeng"):
        conn.subscribe_tracking(waybill, sink.url("express"))
    with pytest.raises(MappingError, match="needs a phone"):
        conn.poll_tracking(waybill)
    assert sim.requests_to("/poll") == [] and sim.requests_to("/poll/query.do") == []


def test_kuaidi100_refuses_a_phone_that_is_not_the_waybills(sim, sink):
    conn = connector(sim)
    waybill = conn.create_waybill(order("O-7205"), WH01).shipment_ref
    with pytest.raises(PermanentError, match="returnCode 700"):
        conn.subscribe_tracking(waybill, sink.url("express"), phone="13900000000")
    conn.subscribe_tracking(waybill, sink.url("express"), phone="021-59990001")   # the sender's also counts


@pytest.mark.parametrize("state,status", [(10, TrackingStatus.IN_TRANSIT), (11, TrackingStatus.IN_TRANSIT),
                                          (12, TrackingStatus.IN_TRANSIT), (13, TrackingStatus.PROBLEM)])
def test_customs_states_10_to_13_are_mapped(sim, sink, state, status):
    conn = connector(sim)
    waybill = conn.create_waybill(order(f"O-73{state}"), WH01).shipment_ref
    sim.advance(waybill, 1, at=at(0))
    sim.advance(waybill, state, context="[上海市]海关", at=at(30))
    events = conn.poll_tracking(waybill, PHONE)
    assert [(e.status, e.at) for e in events] == [(status, at(30)), (TrackingStatus.COLLECTED, at(0))]

"""The 闪送 connector against its simulator: signed orderCalculate quote, orderPlace of its issOrderNo, addition,
preAbortOrder / abortOrder with its penalty, orderInfo, and callbacks over real HTTP with Shansong's signature."""
from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import parse_qs

import pytest

from connectors.base import MemoryBinder, PermanentError, SignatureError
from connectors.registry import build_connector
from hub.domain.model import TrackingStatus
from sandbox.base import Response
from sandbox.shansong import ShansongSimulator, seed_binder

from .conftest import fast_retry, simulator, system_config
from .test_local_delivery import S001, order

sim = simulator(ShansongSimulator)
S = TrackingStatus


def connector(sim):
    return build_connector("shansong", system_config("shansong", sim), seed_binder(MemoryBinder()), fast_retry())


def booked(sim, sink, order_id="O-9101", weight_g=None):
    conn = connector(sim)
    sim.callback_url = sink.url("shansong")
    snap = order(order_id) if weight_g is None else replace(order(order_id), weight_g=weight_g)
    quote = conn.quote(snap, S001, sink.url("shansong"))
    return conn, quote, conn.book(quote)


def sent(sim, op):
    form = {k: v[-1] for k, v in parse_qs(sim.requests_to(f"/openapi/merchants/v5/{op}")[-1].body.decode()).items()}
    return form, json.loads(form["data"])


def test_quote_is_a_signed_order_calculate_in_fen_whole_kg_and_gcj02(sim, sink):
    conn, quote, _ = booked(sim, sink, weight_g=7200)
    form, data = sent(sim, "orderCalculate")
    assert (data["storeId"], data["lbsType"], data["receiverList"][0]["weight"]) == ("20001001", 2, 8)
    assert form["sign"] == form["sign"].upper() and len(form["sign"]) == 32
    assert quote.fee_fen == 1500 + 3 * 200 and quote.quote_id.startswith("TDH")


def test_order_place_books_the_quotes_iss_order_no_and_placing_again_is_the_same_order(sim, sink):
    conn, quote, booking = booked(sim, sink)
    assert sent(sim, "orderPlace")[1] == {"issOrderNo": quote.quote_id}
    assert booking.shipment_ref == quote.quote_id and booking.fee_fen == quote.fee_fen
    assert conn.book(quote).shipment_ref == booking.shipment_ref
    held = conn.query("O-9101")
    assert (held.status, held.shipment_ref, held.order_ref) == (S.BOOKED, quote.quote_id, "O-9101")


def test_a_wrong_secret_is_refused_by_shansong(sim, sink):
    conn = connector(sim)
    conn._secret = "wrong"
    with pytest.raises(PermanentError, match="code 10007"):
        conn.quote(order("O-9102"), S001, sink.url("shansong"))


def test_addition_adds_whole_yuan_only_while_dispatching(sim, sink):
    conn, quote, _ = booked(sim, sink)
    assert conn.add_tip("O-9101", 250, 250) == 200          # whole yuan: rounded down, within the bound
    assert conn.add_tip("O-9101", 100, 300) == 300          # added to the one before
    assert sim.orders[quote.quote_id].addition_fen == 300
    with pytest.raises(PermanentError):
        conn.add_tip("O-9101", 50, 350)                       # less than a yuan: nothing Shansong takes
    sim.advance(quote.quote_id, 30)
    with pytest.raises(PermanentError, match="code 20016"):
        conn.add_tip("O-9101", 200, 500)


def test_pre_abort_tells_the_penalty_and_after_pickup_the_cancel_is_refused(sim, sink):
    conn, quote, _ = booked(sim, sink)
    assert conn.cancel_terms("O-9101") == conn.cancel_terms("O-9101") and conn.cancel_terms("O-9101").allowed
    sim.advance(quote.quote_id, 30)
    terms = conn.cancel_terms("O-9101")
    assert (terms.allowed, terms.penalty_fen) == (True, 200)
    sim.advance(quote.quote_id, 40)
    assert not conn.cancel_terms("O-9101").allowed
    with pytest.raises(PermanentError, match="code 20017"):
        conn.cancel("O-9101", "too late")
    assert sim.orders[quote.quote_id].status == 40


def test_cancel_answers_the_penalty_kept(sim, sink):
    conn, quote, _ = booked(sim, sink)
    sim.advance(quote.quote_id, 30)
    assert conn.cancel("O-9101", "no longer needed") == 200
    assert conn.cancel("O-9101", "no longer needed") == 200           # cancelling twice is fine
    assert conn.query("O-9101").status == S.CANCELLED


def test_callbacks_verify_with_shansongs_sign_and_a_forged_one_does_not(sim, sink):
    conn, quote, _ = booked(sim, sink)
    got, refused = [], []

    def hub(req):
        try:
            got.append(conn.parse_callback(req.body))
        except SignatureError as exc:
            refused.append(str(exc))
            return Response(400, {"error": "bad sign"})
        return Response(200, conn.callback_reply())
    sink.handler = hub
    assert sim.advance(quote.quote_id, 30, 2) == 200
    assert (got[-1].status, got[-1].shipment_ref, got[-1].order_ref, got[-1].rider_phone) == \
        (S.RIDER_AT_STORE, quote.quote_id, "O-9101", "13633334444")
    forged = {"issOrderNo": quote.quote_id, "orderNo": "O-9101", "status": 50, "subStatus": 1,
              "statusChangeTime": "2026-01-01 10:00:00"}
    assert sim.call_back(sink.url("shansong"), forged, sign="0" * 32) == 400 and refused


def test_a_store_with_no_rider_nearby_gets_no_quote(sim, sink):
    sim.no_capacity = True
    with pytest.raises(PermanentError, match="code 20030"):
        connector(sim).quote(order("O-9103"), S001, sink.url("shansong"))


def test_query_of_an_order_shansong_never_had_is_none(sim, sink):
    assert connector(sim).query("O-NONE") is None


def test_the_sandbox_hub_up_starts_calls_shansong_back_at_the_hub(sink, monkeypatch):
    """`hub up --sandbox` / `hub run`: Shansong's callback URL is the account's (set at the courier, not sent with
    an order), so the sandbox must be told the hub's address; without it every Shansong booking stayed
    `dispatched`. The hub's port is the one its gateway binds (HUB_HTTP_PORT over config.yaml)."""
    import os

    from workers import cli

    port = sink.base_url.rsplit(":", 1)[1]
    monkeypatch.setattr(os, "environ", {**os.environ, "HUB_HTTP_PORT": port})
    sandbox = cli._sandbox_alongside(fixed_ports=False)
    try:
        ss = sandbox.shansong
        assert ss.callback_url == sink.url("shansong")
        assert os.environ["HUB_MEITUAN_PUSH_URL"] == sink.url("meituan")
        conn = build_connector("shansong", system_config("shansong", ss), seed_binder(MemoryBinder()), fast_retry())
        booking = conn.book(conn.quote(order("O-9199"), S001, sink.url("shansong")))
        assert ss.advance(booking.shipment_ref, 30) == 200
        assert {r.path for r in sink.posts()} == {"/callbacks/shansong"}
    finally:
        sandbox.stop()

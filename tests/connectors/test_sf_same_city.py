"""The SF 同城 connector against its simulator: signed quote, booking, tip, pre-cancel / cancel, status
query, and pushes over real HTTP with SF's own signature."""
from __future__ import annotations

import json

import pytest

from connectors.base import MemoryBinder, PermanentError, SignatureError
from connectors.registry import build_connector
from hub.domain.model import TrackingStatus
from sandbox.base import Response
from sandbox.sf_same_city import SfSameCitySimulator, seed_binder

from .conftest import fast_retry, simulator, system_config
from .test_local_delivery import S001, order

sim = simulator(SfSameCitySimulator)
S = TrackingStatus


def connector(sim):
    return build_connector("sf_same_city", system_config("sf_same_city", sim), seed_binder(MemoryBinder()),
                           fast_retry())


def booked(sim, sink, order_id="O-9001", weight_g=None):
    conn = connector(sim)
    snap = order(order_id)
    if weight_g is not None:
        from dataclasses import replace
        snap = replace(snap, weight_g=weight_g)
    quote = conn.quote(snap, S001, sink.url("sf_same_city"))
    return conn, quote, conn.book(quote)


def test_quote_is_a_signed_precreateorder_in_fen_grams_and_gcj02(sim, sink):
    conn, quote, _ = booked(sim, sink, weight_g=7200)
    sent = sim.requests_to("/open/api/external/precreateorder")[0]
    body = json.loads(sent.body)
    assert (body["shop_id"], body["weight"], body["lbs_type"], body["total_price"]) == \
        ("3243279847393", 7200, 2, 25600)
    assert quote.fee_fen == 900 + 2 * 100 and quote.pickup_minutes == 15 and quote.weight_g == 7200


def test_book_answers_sfs_order_number_and_booking_again_is_the_same_order(sim, sink):
    conn, quote, booking = booked(sim, sink)
    assert booking.shipment_ref == sim.orders["O-9001"].sf_order_id and booking.fee_fen == quote.fee_fen
    assert conn.book(quote).shipment_ref == booking.shipment_ref and len(sim.orders) == 1
    held = conn.query("O-9001")
    assert (held.status, held.shipment_ref, held.order_ref) == (S.BOOKED, booking.shipment_ref, "O-9001")


def test_a_bad_dev_key_is_refused_by_sf(sim, sink):
    conn = connector(sim)
    conn._key = "wrong"
    with pytest.raises(PermanentError, match="code 1004"):
        conn.quote(order("O-9002"), S001, sink.url("sf_same_city"))


def test_tip_adds_to_the_fee_only_while_no_rider_took_it(sim, sink):
    conn, _, _ = booked(sim, sink)
    assert conn.add_tip("O-9001", 300, 300) == 300
    assert conn.add_tip("O-9001", 200, 500) == 500          # SF adds each tip to the ones before
    assert sim.orders["O-9001"].gratuity_fee == 500
    sim.advance("O-9001", 10)
    with pytest.raises(PermanentError, match="code 2017"):
        conn.add_tip("O-9001", 300, 800)


def test_precancel_tells_the_penalty_and_a_cancel_after_pickup_is_refused(sim, sink):
    conn, _, _ = booked(sim, sink)
    assert conn.cancel_terms("O-9001").allowed and conn.cancel_terms("O-9001").penalty_fen == 0
    sim.advance("O-9001", 10)
    assert conn.cancel_terms("O-9001").penalty_fen == 200
    sim.advance("O-9001", 15)
    terms = conn.cancel_terms("O-9001")
    assert not terms.allowed and "2012" in terms.reason
    with pytest.raises(PermanentError, match="code 2012"):
        conn.cancel("O-9001", "buyer changed mind")
    assert sim.orders["O-9001"].status == 15


def test_pushes_verify_with_sfs_sign_and_a_forged_one_does_not(sim, sink):
    conn, _, booking = booked(sim, sink)
    got, refused = [], []

    def hub(req):
        try:
            got.append(conn.parse_callback(req.body, {k: v[-1] for k, v in req.query.items()}))
        except SignatureError as exc:
            refused.append(str(exc))
            return Response(400, {"error": "bad sign"})
        return Response(200, conn.callback_reply())
    sink.handler = hub
    assert sim.advance("O-9001", 10) == 200
    assert (got[-1].status, got[-1].shipment_ref, got[-1].order_ref) == (S.RIDER_ASSIGNED, booking.shipment_ref,
                                                                         "O-9001")
    forged = {"sf_order_id": booking.shipment_ref, "shop_order_id": "O-9001", "order_status": 17,
              "push_time": 1, "url_index": "order_complete"}
    assert sim.push(sink.url("sf_same_city"), forged, sign="Zm9yZ2Vk") == 400 and refused


def test_query_of_an_order_sf_never_had_is_none(sim, sink):
    assert connector(sim).query("O-NONE") is None

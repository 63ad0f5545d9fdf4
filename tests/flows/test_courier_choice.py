"""Issue 22: a store served by Dada and SF 同城, its rule choosing the courier from their quotes; the booked
quote's fee on the shipment; SF's push to a booking SF does not hold changing nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub import handlers
from hub.config import HubConfig
from hub.domain.courier_choice import choose
from hub.domain.model import DeliveryQuote
from hub.storage.tables import Shipment

from .conftest import NEAR_S001


def rule(monkeypatch, store: str, courier_rule: str, couriers: list[str]) -> None:
    original = HubConfig.location

    def location(self, location_id):
        loc = original(self, location_id)
        if loc is not None and loc.id == store:
            return loc.model_copy(update={"courier_rule": courier_rule, "couriers": couriers})
        return loc
    monkeypatch.setattr(HubConfig, "location", location)


def dispatch(flow) -> str:
    order_id = flow.place("delivery", [("POT-003", 1, 36000)], address=NEAR_S001)
    flow.pay(order_id)
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="allocated")
    return order_id


def booking(flow, order_id) -> Shipment:
    with flow.ctx.uow() as uow:
        row = uow.session.execute(select(Shipment).where(Shipment.order_id == order_id,
                                                         Shipment.active.is_(True))).scalar_one()
        uow.session.expunge_all()
        return row


@pytest.mark.parametrize("courier_rule, carrier, fee", [("cheapest", "sf_same_city", 400),
                                                         ("preference", "local_delivery", 600),
                                                         ("fastest", "sf_same_city", 400)])
def test_the_stores_rule_picks_the_courier_and_the_booked_fee_is_recorded(flow, monkeypatch, courier_rule,
                                                                          carrier, fee):
    rule(monkeypatch, "S001", courier_rule, ["local_delivery", "sf_same_city"])
    flow.sandbox.sf_same_city.base_fee_fen = 400               # SF quotes below Dada's 6 yuan
    order_id = dispatch(flow)
    row = booking(flow, order_id)
    assert (row.carrier, row.fee_fen, flow.order(order_id).status) == (carrier, fee, "dispatched")
    sf = flow.sandbox.sf_same_city
    if carrier == "sf_same_city":
        assert row.shipment_ref == sf.orders[order_id].sf_order_id
        assert order_id not in flow.sandbox.local_delivery.deliveries or \
            not flow.sandbox.local_delivery.deliveries[order_id].booked          # one rider, never two
    else:
        assert order_id not in sf.orders and sf.requests_to("/open/api/external/precreateorder") == []


def test_a_courier_that_cannot_quote_leaves_the_choice_to_the_others(flow, monkeypatch):
    rule(monkeypatch, "S001", "cheapest", ["local_delivery", "sf_same_city"])
    flow.sandbox.sf_same_city.faults.fail_next = 50
    order_id = dispatch(flow)
    assert booking(flow, order_id).carrier == "local_delivery"


def test_the_choice_by_rule():
    q = [DeliveryQuote("a", "1", 900, pickup_minutes=None), DeliveryQuote("b", "2", 700, pickup_minutes=20),
         DeliveryQuote("c", "3", 700, pickup_minutes=10)]
    assert choose(q, "cheapest", ["a", "b", "c"]).carrier == "b"         # a tie goes to the store's order
    assert choose(q, "fastest", ["a", "b", "c"]).carrier == "c"
    assert choose(q, "preference", ["c", "a", "b"]).carrier == "c"
    assert choose(q, "cheapest", ["x"]) is None and choose([], "fastest", ["a"]) is None

"""Issue 22: the product master's weights (pulled from the ERP) make each basket's weight, which every courier's
quote and booking declare in its own unit: Dada's cargo_weight in kg, SF 同城's weight in grams."""
from __future__ import annotations

import pytest

from hub import handlers
from hub.bootstrap import upsert_skus
from hub.config import HubConfig
from hub.domain.model import Sku
from hub.flows import erp_pull
from hub.services import orders
from hub.storage.tables import SkuRow

from .conftest import NEAR_S001


def courier(monkeypatch, name: str) -> None:
    """S001 served by `name` alone."""
    original = HubConfig.location

    def location(self, location_id):
        loc = original(self, location_id)
        return loc.model_copy(update={"couriers": [name]}) if loc is not None and loc.id == "S001" else loc
    monkeypatch.setattr(HubConfig, "location", location)


def dispatch(flow, lines) -> str:
    order_id = flow.place("delivery", lines, address=NEAR_S001)
    flow.pay(order_id)
    flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="allocated")
    return order_id


def test_the_erp_pull_brings_each_skus_weight(flow):
    erp_pull.pull_products(flow.ctx)
    with flow.ctx.reader() as uow:
        weights = {row.code: row.weight_g for row in uow.session.query(SkuRow)}
    assert {k: weights[k] for k in ("TEA-001", "CUP-002", "POT-003", "SET-004")} == \
        {"TEA-001": 320, "CUP-002": 180, "POT-003": 650, "SET-004": 1200}


def test_dada_is_told_the_baskets_weight_in_kg(flow, monkeypatch):
    erp_pull.pull_products(flow.ctx)
    courier(monkeypatch, "local_delivery")
    order_id = dispatch(flow, [("POT-003", 2, 36000), ("CUP-002", 1, 4500)])     # 2 x 650 g + 180 g
    delivery = flow.sandbox.local_delivery.deliveries[order_id]
    assert delivery.booked and delivery.request["cargo_weight"] == 1.48


def test_sf_is_told_the_baskets_weight_in_grams_at_quote_and_booking(flow, monkeypatch):
    erp_pull.pull_products(flow.ctx)
    courier(monkeypatch, "sf_same_city")
    order_id = dispatch(flow, [("SET-004", 3, 19900)])                          # 3 x 1200 g
    sf = flow.sandbox.sf_same_city
    [quote] = [r.json() for r in sf.requests_to("/open/api/external/precreateorder")]
    assert quote["weight"] == 3600 and sf.orders[order_id].weight_gram == 3600


def test_a_sku_without_a_weight_leaves_the_courier_its_default(flow, monkeypatch):
    with flow.ctx.uow() as uow:
        upsert_skus(uow, [Sku("POT-003", "Yixing clay teapot", "6901234567003", "pcs", 36000, None)])
        uow.commit()
    courier(monkeypatch, "local_delivery")
    order_id = dispatch(flow, [("POT-003", 2, 36000)])
    assert flow.sandbox.local_delivery.deliveries[order_id].request["cargo_weight"] == 1.0


@pytest.mark.parametrize(("picked", "weight"), [(1, 650), (2, 1300)])
def test_the_basket_weighs_what_the_store_picked(flow, picked, weight):
    with flow.ctx.uow() as uow:
        upsert_skus(uow, [Sku("POT-003", "Yixing clay teapot", "6901234567003", "pcs", 36000, weight_g=650)])
        uow.commit()
    order_id = flow.place("delivery", [("POT-003", 2, 36000)], address=NEAR_S001)
    with flow.ctx.uow() as uow:
        order = orders.get(uow, order_id, lock=True)
        assert orders.snapshot(order).weight_g == 1300
        order.lines[0].qty_picked = picked
        assert orders.snapshot(order).weight_g == weight

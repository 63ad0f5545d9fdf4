"""POS connector against its simulator: the store's orders out (pickup, delivery, parcels), inventory changes in."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from connectors.base import MappingError, MemoryBinder, PermanentError, TransientError
from hub.domain.model import (
    Address,
    Buyer,
    Fulfillment,
    FulfillmentType,
    OrderLine,
    OrderSnapshot,
    StockCount,
    StockDelta,
)
from sandbox.base import Response
from sandbox.pos import POS_LOCATIONS, PosSimulator, catalog_id, seed_binder
from tests.connectors.conftest import simulator

SKUS = ["SKU-A", "SKU-B"]


sim = simulator(PosSimulator)


@pytest.fixture
def binder():
    return seed_binder(MemoryBinder(), SKUS)


@pytest.fixture
def pos(make_connector, sim, binder):
    return make_connector("pos", sim, binder=binder, timeout=1.0)


def pickup(order_id="O-100", store="S001", lines=(("SKU-A", 2, 1990), ("SKU-B", 1, 500))) -> OrderSnapshot:
    return OrderSnapshot(order_id=order_id, channel="miniprogram", status="allocated",
                         fulfillment=Fulfillment(FulfillmentType.PICKUP, store_id=store),
                         lines=tuple(OrderLine(*ln) for ln in lines),
                         buyer=Buyer("B-1", "Han Meimei", "13900000001"), total_fen=4480,
                         location_id=store, created_at=datetime(2024, 5, 1, tzinfo=UTC))


# -- pickup orders -----------------------------------------------------------------------------

def test_push_pickup_order_lands_at_the_stores_pos(sim, pos):
    pos_id = pos.push_pickup_order(pickup())
    [order] = sim.orders_at("S001")
    assert order["id"] == pos_id and order["reference_id"] == "O-100"
    assert order["location_id"] == POS_LOCATIONS["S001"]
    assert [(i["catalog_object_id"], i["quantity"], i["base_price_money"]) for i in order["line_items"]] == [
        (catalog_id("SKU-A"), "2", {"amount": 1990, "currency": "CNY"}),
        (catalog_id("SKU-B"), "1", {"amount": 500, "currency": "CNY"})]
    [f] = order["fulfillments"]
    assert (f["type"], f["state"]) == ("PICKUP", "PROPOSED")
    assert f["pickup_details"]["recipient"] == {"display_name": "Han Meimei", "phone_number": "13900000001"}
    assert sim.orders_at("S002") == []


def test_push_is_idempotent_on_the_hub_order_id(sim, pos):
    assert pos.push_pickup_order(pickup()) == pos.push_pickup_order(pickup())
    assert len(sim.orders) == 1


def test_pickup_states_move_forward(sim, pos):
    order = pickup()
    pos.push_pickup_order(order)
    pos.update_pickup_state(order, "ready")
    assert sim.pickup_state("O-100") == "PREPARED"
    pos.update_pickup_state(order, "collected")
    assert sim.pickup_state("O-100") == "COMPLETED" and sim.order_for("O-100")["state"] == "COMPLETED"
    assert [s for _, _, s in sim.state_changes] == ["PREPARED", "COMPLETED"]


def test_repeated_state_update_is_a_no_op(sim, pos):
    order = pickup()
    pos.push_pickup_order(order)
    pos.update_pickup_state(order, "ready")
    pos.update_pickup_state(order, "ready")
    assert len(sim.state_changes) == 1


def test_state_update_without_a_binding_finds_the_order_by_its_idempotent_create(sim, make_connector):
    order = pickup()
    make_connector("pos", sim, binder=seed_binder(MemoryBinder(), SKUS)).push_pickup_order(order)
    fresh = make_connector("pos", sim, binder=seed_binder(MemoryBinder(), SKUS))   # knows nothing of it
    fresh.update_pickup_state(order, "cancelled")
    assert len(sim.orders) == 1
    assert sim.pickup_state("O-100") == "CANCELED" and sim.order_for("O-100")["state"] == "CANCELED"


def test_concurrent_till_edit_is_retried_on_the_new_version(sim, pos):
    order = pickup()
    pos.push_pickup_order(order)
    sim.till_edits_after_get = 1
    pos.update_pickup_state(order, "ready")
    assert sim.pickup_state("O-100") == "PREPARED"
    assert len([r for r in sim.received if r.method == "PUT"]) == 2


def test_illegal_transition_is_permanent(sim, pos):
    order = pickup()
    pos.push_pickup_order(order)
    pos.update_pickup_state(order, "cancelled")
    with pytest.raises(PermanentError, match="INVALID_STATE_TRANSITION"):
        pos.update_pickup_state(order, "collected")
    assert len([r for r in sim.received if r.method == "PUT"]) == 2


def test_unknown_state_and_unbound_sku_never_leave(sim, pos):
    with pytest.raises(MappingError, match="unknown canonical value"):
        pos.update_pickup_state(pickup(), "teleported")
    with pytest.raises(MappingError, match="unmapped sku"):
        pos.push_pickup_order(pickup(lines=(("SKU-X", 1, 1),)))
    with pytest.raises(MappingError, match="unmapped store"):
        pos.push_pickup_order(pickup(store="S999"))
    assert sim.received == []


def test_wrong_api_key_is_401_and_not_retried(sim, make_connector, binder):
    pos = make_connector("pos", sim, binder=binder, api_key="not-the-key")
    with pytest.raises(PermanentError, match="401.*UNAUTHORIZED"):
        pos.push_pickup_order(pickup())
    assert len(sim.received) == 1 and sim.orders == {}


@pytest.mark.parametrize("status,retry_after", [(503, None), (429, 0.02)])
def test_transient_faults_retried_to_success(sim, pos, status, retry_after):
    sim.faults.fail_next, sim.faults.error_status, sim.faults.retry_after = 2, status, retry_after
    pos.push_pickup_order(pickup())
    assert len(sim.orders) == 1 and len(sim.requests_to("/v2/orders")) == 3


def test_timeout_retried_without_a_duplicate_order(sim, pos):
    sim.faults.timeout_next, sim.faults.timeout_s = 1, 3.0   # well past the 1 s client timeout
    pos.push_pickup_order(pickup())
    assert len(sim.orders) == 1 and len(sim.requests_to("/v2/orders")) == 2


def test_outage_gives_up_transient(sim, pos):
    sim.faults.fail_next = 99
    with pytest.raises(TransientError):
        pos.push_pickup_order(pickup())
    assert len(sim.received) == 4


# -- delivery and parcel orders, and the till's list ----------------------------------------------

PROMISED = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
DOOR = Address("88 Changde Road, Shanghai", 31.23, 121.44, "Li Lei", "13700000002")


def for_store(kind: FulfillmentType, order_id: str = "O-200") -> OrderSnapshot:
    return replace(pickup(order_id), fulfillment=Fulfillment(kind, None, DOOR), promised_at=PROMISED,
                   note="ring twice", bins={"SKU-A": "A-03"})


def test_a_delivery_order_lands_at_the_pos_with_its_shelf_hints_promised_time_and_note(sim, pos):
    pos.push_order(for_store(FulfillmentType.DELIVERY))
    [order] = sim.orders_at("S001", "DELIVERY")
    assert [i.get("metadata") for i in order["line_items"]] == [{"bin": "A-03"}, None]
    [f] = order["fulfillments"]
    details = f["delivery_details"]
    assert (f["state"], details["schedule_type"], details["note"]) == ("PROPOSED", "SCHEDULED", "ring twice")
    assert datetime.fromisoformat(details["deliver_at"]) == PROMISED
    assert details["recipient"] == {"display_name": "Li Lei", "phone_number": "13700000002",
                                    "address": {"address_line_1": "88 Changde Road, Shanghai"}}
    assert sim.orders_at("S001", "PICKUP") == []


def test_a_parcel_a_store_ships_is_a_shipment_and_moves_like_a_pickup(sim, pos):
    order = for_store(FulfillmentType.EXPRESS, "O-300")
    pos.push_order(order)
    pos.update_order_state(order, "ready")
    [at_pos] = sim.orders_at("S001", "SHIPMENT")
    details = at_pos["fulfillments"][0]["shipment_details"]
    assert datetime.fromisoformat(details["expected_shipped_at"]) == PROMISED
    assert details["shipping_note"] == "ring twice"
    assert sim.pickup_state("O-300") == "PREPARED"


def test_the_tills_search_lists_a_stores_orders_by_fulfilment_type(sim, pos):
    pos.push_order(pickup("O-1"))
    pos.push_order(for_store(FulfillmentType.DELIVERY, "O-2"))
    pos.push_order(replace(for_store(FulfillmentType.DELIVERY, "O-3"), location_id="S002"))
    search = pos.session.post(pos.base_url + "/v2/orders/search", timeout=5, json={
        "location_ids": [POS_LOCATIONS["S001"]],
        "query": {"filter": {"fulfillment_filter": {"fulfillment_types": ["DELIVERY"]}}}})
    assert search.status_code == 200 and [o["reference_id"] for o in search.json()["orders"]] == ["O-2"]
    every = pos.session.post(pos.base_url + "/v2/orders/search", timeout=5,
                             json={"location_ids": [POS_LOCATIONS["S001"]], "limit": 1})
    assert [o["reference_id"] for o in every.json()["orders"]] == ["O-1"] and every.json()["cursor"] == "1"
    bad = pos.session.post(pos.base_url + "/v2/orders/search", timeout=5, json={"location_ids": []})
    assert bad.status_code == 400


def test_a_delivery_without_the_door_is_refused_by_the_pos(sim, pos):
    no_door = replace(for_store(FulfillmentType.DELIVERY), fulfillment=Fulfillment(FulfillmentType.DELIVERY))
    with pytest.raises(PermanentError, match="recipient.address"):
        pos.push_order(no_door)
    assert sim.orders == {}


# -- inventory changes ---------------------------------------------------------------------------

T = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)


def test_sale_receipt_and_count(sim, pos):
    payload = {"changes": [
        sim.adjustment("SKU-A", 2, "S001", occurred_at=T, change_id="ADJ1"),
        sim.adjustment("SKU-B", 5, "S001", from_state="NONE", to_state="IN_STOCK", occurred_at=T,
                       change_id="ADJ2"),
        sim.physical_count("SKU-A", 17, "S001", occurred_at=T, change_id="CNT1"),
    ]}
    assert pos.parse_inventory_changes(payload, "S001") == [
        StockDelta("pos", "ADJ1", "SKU-A", "S001", -2, T, "sale"),
        StockDelta("pos", "ADJ2", "SKU-B", "S001", 5, T, "receipt"),
        StockCount("pos", "CNT1", "SKU-A", "S001", 17, T),
    ]


def test_idempotency_key_stands_in_for_a_missing_id(sim, pos):
    change = sim.adjustment("SKU-A", 1, "S001")
    del change["adjustment"]["id"]
    change["adjustment"]["idempotency_key"] = "till-7-receipt-88"
    [delta] = pos.parse_inventory_changes({"changes": [change]}, "S001")
    assert delta.external_id == "till-7-receipt-88"


@pytest.mark.parametrize("mutate,field,reason", [
    (lambda c: c["adjustment"].update(catalog_object_id="CVUNKNOWN"), "changes[0].catalog_object_id",
     "unmapped sku"),
    (lambda c: c["adjustment"].pop("occurred_at"), "changes[0].occurred_at", "missing required field"),
    (lambda c: c["adjustment"].update(occurred_at="2024-05-01T10:00:00"), "changes[0].occurred_at", "naive"),
    (lambda c: c["adjustment"].update(quantity="-3"), "changes[0].adjustment.quantity", "positive"),
    (lambda c: c["adjustment"].update(quantity="1.5"), "changes[0].quantity", "whole number"),
    (lambda c: c["adjustment"].update(from_state="SOLD", to_state="WASTE"), "changes[0].adjustment",
     "unknown from_state>to_state"),
    (lambda c: c["adjustment"].update(location_id=POS_LOCATIONS["S002"]), "changes[0].location_id",
     "not S001"),
    (lambda c: c["adjustment"].pop("id"), "changes[0].id", "neither id nor idempotency_key"),
    (lambda c: c.update(type="TRANSFER"), "changes[0].type", "unknown change type"),
])
def test_bad_adjustments_refused_with_reason(sim, pos, mutate, field, reason):
    change = sim.adjustment("SKU-A", 1, "S001")
    mutate(change)
    with pytest.raises(MappingError, match=reason) as err:
        pos.parse_inventory_changes({"changes": [change]}, "S001")
    assert err.value.field == field


def test_negative_count_refused(sim, pos):
    with pytest.raises(MappingError, match="cannot be negative"):
        pos.parse_inventory_changes({"changes": [sim.physical_count("SKU-A", -1, "S001")]}, "S001")


def test_one_bad_change_refuses_the_whole_batch(sim, pos):
    bad = sim.adjustment("SKU-A", 1, "S001")
    bad["adjustment"]["catalog_object_id"] = "CVUNKNOWN"
    with pytest.raises(MappingError):
        pos.parse_inventory_changes({"changes": [sim.adjustment("SKU-B", 1, "S001"), bad]}, "S001")


@pytest.mark.parametrize("payload", [{}, {"changes": []}, {"changes": "x"}, [], {"changes": [3]}])
def test_malformed_webhook(pos, payload):
    with pytest.raises(MappingError):
        pos.parse_inventory_changes(payload, "S001")


def test_webhook_over_http_duplicated_and_reordered(sim, pos, sink, credentials):
    parsed = []

    def hub(req):
        if req.headers.get("Authorization") != f"Bearer {credentials['HUB_POS_S001_KEY']}":
            return Response(401, {"error": "bad store key"})
        parsed.append(pos.parse_inventory_changes(req.json(), "S001"))
        return Response(200, {"ok": True})
    sink.handler = hub
    sim.faults.duplicate_callbacks = sim.faults.reorder_callbacks = True
    payload = {"changes": [sim.adjustment("SKU-A", 1, "S001", change_id="A1"),
                           sim.physical_count("SKU-A", 9, "S001", change_id="C1")]}
    resp = sim.send_inventory_change(sink.url("pos"), credentials["HUB_POS_S001_KEY"], payload)
    assert resp.status_code == 200 and [s for _, s in sim.inventory_posts] == [200, 200]
    first, second = parsed
    assert [e.external_id for e in first] == ["C1", "A1"]          # newest first, as sent
    assert first == second                                          # the hub dedupes by (source, id)
    assert sim.send_inventory_change(sink.url("pos"), "wrong", payload).status_code == 401

"""The ERP connector (zeep) against the sandbox ERP (a spyne SOAP server) on loopback."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.base import MappingError, MemoryBinder, PermanentError, RetryPolicy, TransientError
from connectors.erp_soap import ErpSoapConnector
from connectors.registry import build_connector
from hub.config import SystemConfig
from hub.domain.model import Buyer, Fulfillment, FulfillmentType, OrderLine, OrderSnapshot, Sku
from mappings.engine import load_mapping
from sandbox.credentials import sandbox_env
from sandbox.erp_soap import ErpSimulator, seed_binder

from .conftest import system_config

CST = timezone(timedelta(hours=8))
FAST = dict(initial=0.01, maximum=0.05, jitter=0.0)


@pytest.fixture(scope="module")
def sim():
    with ErpSimulator.from_env(sandbox_env()) as s:
        yield s


@pytest.fixture
def erp(sim):
    sim.reset()
    return sim


@pytest.fixture
def binder():
    return seed_binder(MemoryBinder())


def connector(sim, binder, attempts=4, **overrides) -> ErpSoapConnector:
    """Built as the hub builds it: config.yaml's `erp` block, the sandbox's credentials."""
    return build_connector("erp", system_config("erp", sim, **overrides), binder,
                           RetryPolicy(attempts=attempts, **FAST))


def order(order_id="O-1001", location="WH01", lines=(OrderLine("TEA-001", 2, 12800),)) -> OrderSnapshot:
    return OrderSnapshot(
        order_id=order_id, channel="miniprogram", status="completed",
        fulfillment=Fulfillment(FulfillmentType.EXPRESS), lines=tuple(lines),
        buyer=Buyer("U-7", "Li Lei", "13800001111"), total_fen=sum(ln.qty * ln.unit_price_fen for ln in lines),
        location_id=location, created_at=datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


def test_product_master_in_fen_with_canonical_units(erp, binder):
    conn = connector(erp, binder)
    assert isinstance(conn, ErpSoapConnector) and conn.wsdl == erp.wsdl_url
    skus = conn.fetch_products()
    assert skus[0] == Sku("TEA-001", "Longjing green tea 250g", "6901234567001", "box", 12800, "A-03", 320)
    assert {s.code: s.bin for s in skus}["POT-003"] is None          # a master without a shelf: no hint
    assert {s.code: (s.unit, s.price_fen) for s in skus}["CUP-002"] == ("pcs", 4500)
    assert len(skus) == 4


def test_warehouse_stock_is_counts_at_the_erps_as_of_time_under_hub_ids(erp, binder):
    as_of = datetime(2026, 11, 25, 9, 30, tzinfo=CST)
    erp.set_stock("1000", "POT-003", 7, as_of)
    counts = {c.sku: c for c in connector(erp, binder).fetch_warehouse_stock()}
    pot = counts["POT-003"]
    assert (pot.location_id, pot.on_hand, pot.counted_at, pot.source) == ("WH01", 7, as_of, "erp")
    assert pot.external_id == "erp:WH01:POT-003:2026-11-25T09:30:00+08:00"


def test_stock_filter_sends_the_erps_plant_code(erp, binder):
    erp.set_stock("2000", "TEA-001", 3)        # a plant the filter leaves out
    counts = connector(erp, binder).fetch_warehouse_stock(["WH01"])
    assert {c.location_id for c in counts} == {"WH01"}
    assert len(counts) == 4


def test_unbound_plant_is_a_mapping_error_naming_it(erp, binder):
    erp.set_stock("2000", "TEA-001", 3)
    with pytest.raises(MappingError) as err:
        connector(erp, binder).fetch_warehouse_stock()
    assert err.value.value == "2000" and "unmapped location" in str(err.value)
    erp._stock.pop(("2000", "TEA-001"))


def test_unbound_hub_warehouse_fails_before_calling(erp, binder):
    with pytest.raises(MappingError, match="WH99"):
        connector(erp, binder).fetch_warehouse_stock(["WH99"])
    assert erp.calls_to("GetWarehouseStock") == []


def test_sales_order_gets_a_document_number_and_is_idempotent(erp, binder):
    erp_conn = connector(erp, binder)
    lines = (OrderLine("TEA-001", 2, 12800), OrderLine("CUP-002", 1, 4500))
    doc = erp_conn.push_sales_order(order("O-2001", lines=lines))
    assert doc.isdigit() and erp.document_for("O-2001") == doc
    assert erp_conn.push_sales_order(order("O-2001", lines=lines)) == doc
    assert connector(erp, binder).push_sales_order(order("O-2002")) != doc
    sent = erp.received_orders[0]
    assert (sent["ExternalRef"], sent["Plant"], sent["TotalAmount"]) == ("O-2001", "1000", Decimal("301.00"))
    assert sent["Lines"] == [{"ItemNo": "TEA-001", "Quantity": 2, "UnitPrice": Decimal("128.00")},
                             {"ItemNo": "CUP-002", "Quantity": 1, "UnitPrice": Decimal("45.00")}]
    assert sent["OrderDate"] == datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def test_busy_fault_is_retried_to_success(erp, binder):
    erp.faults.busy_next = 2
    doc = connector(erp, binder).push_sales_order(order("O-3001"))
    outcomes = [c.outcome for c in erp.calls_to("CreateSalesOrder")]
    assert outcomes == ["fault:Server.Busy", "fault:Server.Busy", "ok"]
    assert erp.document_for("O-3001") == doc


def test_busy_until_attempts_run_out_is_transient(erp, binder):
    erp.faults.busy_next = 10
    with pytest.raises(TransientError, match="Server.Busy"):
        connector(erp, binder, attempts=3).fetch_products()
    assert len(erp.calls_to("GetProductMaster")) == 3


def test_soap_fault_is_a_permanent_error_and_not_retried(erp, binder):
    erp.faults.fault_next = 1
    with pytest.raises(PermanentError) as err:
        connector(erp, binder).push_sales_order(order("O-4001"))
    assert "SOAP Fault from CreateSalesOrder: Server: RFC_ERROR_SYSTEM_FAILURE" in str(err.value)
    assert not isinstance(err.value, TransientError)
    assert len(erp.calls_to("CreateSalesOrder")) == 1
    assert erp.document_for("O-4001") is None


def test_refused_order_names_the_reason(erp, binder):
    with pytest.raises(PermanentError, match="Client.UnknownMaterial: material NOPE-9 does not exist"):
        connector(erp, binder).push_sales_order(order("O-4002", lines=(OrderLine("NOPE-9", 1, 100),)))
    assert len(erp.calls_to("CreateSalesOrder")) == 1


def test_order_without_a_bound_location_is_a_mapping_error(erp, binder):
    with pytest.raises(MappingError, match="location_id"):
        connector(erp, binder).push_sales_order(order("O-4003", location="S001"))
    assert erp.received_orders == []


def test_wrong_password_is_a_clear_permanent_error(erp, binder):
    with pytest.raises(PermanentError, match="Client.Authentication: invalid username or password"):
        connector(erp, binder, password="wrong").fetch_products()
    assert [c.outcome for c in erp.calls] == ["fault:Client.Authentication"]


def test_password_digest_authenticates(erp, binder):
    assert len(connector(erp, binder, password_digest=True).fetch_products()) == 4
    assert erp.calls[0].user == "hub"


def test_http_503_at_the_front_is_transient_and_retried(erp, binder):
    erp.faults.http_error_next = 1
    assert len(connector(erp, binder).fetch_products()) == 4
    assert len(erp.calls_to("GetProductMaster")) == 1     # the 503 never reached the SOAP service


def test_unreachable_erp_is_transient(binder):
    sim = ErpSimulator().start()
    url = sim.wsdl_url
    sim.stop()
    system = SystemConfig(kind="erp_soap", wsdl=url, username="hub", password="x")
    conn = ErpSoapConnector.from_config("erp", system, binder, RetryPolicy(attempts=2, **FAST))
    with pytest.raises(TransientError, match="cannot read the WSDL"):
        conn.fetch_products()


def test_latency_beyond_the_timeout_is_transient(erp, binder):
    # Timeout and latency far apart, so a busy machine cannot blur them.
    conn = connector(erp, binder, attempts=1, timeout=1.5)
    conn.fetch_products()                  # WSDL loaded before the ERP slows down
    erp.faults.latency_s = 3.0
    with pytest.raises(TransientError, match="GetProductMaster"):
        conn.fetch_products()


def test_sales_order_mapping_round_trips(binder):
    from connectors.binding import SystemBinder
    m, b = load_mapping("erp_soap"), SystemBinder(binder, "erp")
    snap = order("O-5001", lines=(OrderLine("TEA-001", 2, 12800), OrderLine("CUP-002", 3, 4500)))
    payload = m.outbound("sales_order", snap, b)
    assert payload["Order"]["Plant"] == "1000" and payload["Order"]["TotalAmount"] == "391.00"
    back = m.inbound("sales_order", payload, b)
    assert back["order_id"] == snap.order_id and back["location_id"] == "WH01"
    assert back["total_fen"] == snap.total_fen and back["created_at"] == snap.created_at
    assert back["buyer"] == {"id": "U-7", "name": "Li Lei"}
    assert [(ln["sku"], ln["qty"], ln["unit_price_fen"]) for ln in back["lines"]] == \
        [(ln.sku, ln.qty, ln.unit_price_fen) for ln in snap.lines]


def test_stock_line_mapping_round_trips(binder):
    from connectors.binding import SystemBinder
    m, b = load_mapping("erp_soap"), SystemBinder(binder, "erp")
    canonical = {"location_id": "WH01", "sku": "SET-004", "on_hand": 12,
                 "counted_at": datetime(2026, 11, 25, 8, 0, tzinfo=CST)}
    assert m.inbound("stock_line", m.outbound("stock_line", canonical, b), b) == canonical

"""The three real ERP styles by config and mapping alone (issue 25): a NAV codeunit with one call
per order line and no product list, a service without a lookup whose answer is lost after it
saved, and the ERP's own duplicate refusal read as "already there". Against the NAV- and
SAP-style simulators over real SOAP (spyne on loopback)."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from connectors.base import MemoryBinder, OutcomeUnknown, RetryPolicy
from connectors.erp_soap import ErpSoapConnector
from hub.domain.model import OrderLine
from mappings.engine import MAPPINGS_DIR, load_mapping
from sandbox.credentials import sandbox_env
from sandbox.erp_nav import NavSimulator
from sandbox.erp_sap import SapSimulator
from tests.connectors.test_erp_flavours import FAST, connect, order

LINES = (OrderLine("TEA-001", 2, 12800), OrderLine("CUP-002", 1, 4500))


@pytest.fixture
def nav():
    with NavSimulator.from_env(sandbox_env()) as sim:
        yield sim


@pytest.fixture
def sap():
    with SapSimulator.from_env(sandbox_env()) as sim:
        yield sim


def codeunit(nav: NavSimulator, attempts: int = 4) -> ErpSoapConnector:
    return connect(nav, "erp_nav_codeunit.yaml", "basic", "ZENTRALE", attempts=attempts)


def sap_without_lookup(sap: SapSimulator, tmp_path: Path, attempts: int = 4,
                       locations: tuple[str, ...] = ("WH01",)) -> ErpSoapConnector:
    """The shipped SAP mapping with its lookup taken out: a service that publishes only the create."""
    raw = yaml.safe_load((MAPPINGS_DIR / "erp_sap.yaml").read_text())
    del raw["calls"]["create_sales_order"]["lookup"], raw["calls"]["find_sales_order"]
    raw["system"] = "erp_sap_create_only"
    (tmp_path / "erp_sap_create_only.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    binder = MemoryBinder()
    for location in locations:
        binder.bind("erp", "location", "1000", location)
    return ErpSoapConnector("erp", sap.wsdl_url, sap.username, sap.password, binder,
                            RetryPolicy(attempts=attempts, **FAST),
                            load_mapping("erp_sap_create_only", tmp_path), auth="basic")


# -- item 3: one call per order line ----------------------------------------------------------

def test_a_per_line_codeunit_gets_every_line_numbered_by_the_mappings_rule(nav):
    doc = codeunit(nav).push_sales_order(order("O-CU-1", LINES))
    assert doc == "O-CU-1"
    assert [(ln["lineNo"], ln["itemNo"], ln["locationCode"], ln["quantity"], ln["unitPrice"])
            for ln in nav.lines_for("O-CU-1")] == [(10000, "TEA-001", "ZENTRALE", Decimal(2), Decimal("128.00")),
                                                   (20000, "CUP-002", "ZENTRALE", Decimal(1), Decimal("45.00"))]


def test_a_per_line_push_that_fails_on_a_line_is_not_applied(nav):
    bad = (OrderLine("TEA-001", 2, 12800), OrderLine("NOPE-9", 1, 100))
    with pytest.raises(Exception, match="NOPE-9"):
        codeunit(nav).push_sales_order(order("O-CU-2", bad))
    assert [ln["lineNo"] for ln in nav.lines_for("O-CU-2")] == [10000]


# -- item 4: "already there" is success --------------------------------------------------------

def test_line_answer_lost_then_the_duplicate_refusal_counts_as_applied_and_line_two_still_goes(nav):
    nav.faults.lose_answer_next = 1            # line 10000 saved, its answer lost (504)
    doc = codeunit(nav).push_sales_order(order("O-CU-3", LINES))
    assert doc == "O-CU-3"
    assert [ln["lineNo"] for ln in nav.lines_for("O-CU-3")] == [10000, 20000]
    # the retry met "The Sales Line already exists" for line 10000, and sent line 20000 once
    assert [r["lineNo"] for r in nav.received_orders] == [10000, 10000, 20000]


def test_a_redelivered_per_line_order_is_applied_without_new_lines(nav):
    codeunit(nav).push_sales_order(order("O-CU-4", LINES))
    assert codeunit(nav).push_sales_order(order("O-CU-4", LINES)) == "O-CU-4"
    assert len(nav.lines_for("O-CU-4")) == 2


# -- item 5: a create with no lookup is never re-sent blindly -------------------------------------

def test_create_without_lookup_whose_answer_is_lost_is_parked_as_unknown_not_sent_again(sap, tmp_path):
    sap.faults.lose_answer_next = 1
    with pytest.raises(OutcomeUnknown, match="check the ERP before resending"):
        sap_without_lookup(sap, tmp_path).push_sales_order(order("O-SAP-LOST"))
    assert len(sap.documents_for("O-SAP-LOST")) == 1
    assert len(sap.calls_to("BAPI_SALESORDER_CREATEFROMDAT2")) == 1     # sent once, never again


def test_create_without_lookup_retries_a_lock_the_erp_answered(sap, tmp_path):
    """A lock (V1 042) is an answer: nothing was saved, so sending again is safe."""
    sap.faults.lock_next = 1
    doc = sap_without_lookup(sap, tmp_path).push_sales_order(order("O-SAP-LOCK"))
    assert sap.documents_for("O-SAP-LOCK") == [doc]


def test_create_with_a_lookup_looks_up_after_a_lost_answer_instead(sap):
    sap.faults.lose_answer_next = 1
    doc = connect(sap, "erp_sap.yaml", "basic", "1000").push_sales_order(order("O-SAP-LOOK"))
    assert sap.documents_for("O-SAP-LOOK") == [doc]


# -- items 1 and 2: every job optional; stock by item for the hub's own SKUs ------------------------

def test_an_erp_without_product_list_or_stock_passes_the_config_check_and_says_what_it_does(nav, tmp_path):
    from connectors.registry import check_system
    from tests.connectors.test_erp_flavours import erp_config

    assert check_system("erp", erp_config(nav, "erp_nav_codeunit.yaml", "basic")) == []
    conn = codeunit(nav)
    assert (conn.does("product_master"), conn.does("warehouse_stock"), conn.does("create_sales_order")) == \
        (False, True, True)


def test_stock_by_item_asks_for_the_hubs_skus_when_the_erp_has_no_product_list(nav):
    nav.set_stock("ZENTRALE", "POT-003", 7)
    counts = {c.sku: c for c in codeunit(nav).fetch_warehouse_stock(["WH01"], sku_codes=["POT-003", "TEA-001"])}
    assert sorted(counts) == ["POT-003", "TEA-001"]
    assert (counts["POT-003"].location_id, counts["POT-003"].on_hand) == ("WH01", 7)
    assert len(nav.calls_to("Codeunit/Lagerabfrage.GetItemInventory")) == 2


# -- item 7: location codes by config ------------------------------------------------------------

def test_location_codes_written_in_the_erp_block_bind_without_code_and_are_checked(sap):
    from connectors.registry import build_connector, check_system
    from hub.config import SystemConfig
    from tests.connectors.test_erp_flavours import erp_config

    base = erp_config(sap, "erp_sap.yaml", "basic")
    block = SystemConfig(kind=base.kind, **{**base.model_extra, "bindings": {"location": {"WH01": "1000"}}})
    assert check_system("erp", block) == []
    conn = build_connector("erp", block, MemoryBinder(), RetryPolicy(attempts=2, **FAST))   # the binder knows nothing
    doc = conn.push_sales_order(order("O-SAP-BIND"))
    assert sap.documents_for("O-SAP-BIND") == [doc]
    assert {i["PLANT"] for i in sap.received_orders[-1]["items"]} == {"1000"}
    counts = conn.fetch_warehouse_stock(["WH01"])
    assert counts and {c.location_id for c in counts} == {"WH01"}

    bad = SystemConfig(kind=base.kind, **{**base.model_extra,
                                          "bindings": {"location": {"WH01": "1000", "WH02": "1000"}}})
    assert ("systems.erp.bindings.location.WH02", "code '1000' is already bound to WH01") in check_system("erp", bad)


# -- item 8: returns and refunds as NAV sales return orders -------------------------------------

def erp_return(return_id: str, kind: str, amount_fen: int):
    from datetime import UTC, datetime

    from hub.domain.model import ErpReturn
    return ErpReturn(return_id, kind, "O-NAV-R", LINES, amount_fen, "WH01", datetime(2026, 11, 26, 2, tzinfo=UTC))


def test_a_refund_is_one_nav_sales_return_order_even_after_a_lost_answer(nav):
    nav.faults.lose_answer_next = 1
    conn = connect(nav, "erp_nav.yaml", "basic", "ZENTRALE")
    doc = conn.push_return(erp_return("RO-NAV-R-1", "refund", 30100))
    assert nav.returns_for("RO-NAV-R-1") == [doc]                 # the retry looked it up and found it
    assert conn.push_return(erp_return("RO-NAV-R-1", "refund", 30100)) == doc
    [saved] = nav.return_orders.values()
    assert (saved["Ihre_Referenz"], saved["Rueckgabegrundcode"], saved["Erstattungsbetrag"]) == \
        ("O-NAV-R", "ERSTATTUNG", Decimal("301.00"))
    assert [(ln["Zeilennr"], ln["Nr"], ln["Menge"]) for ln in saved["Zeilen"]] == \
        [(10000, "TEA-001", Decimal(2)), (20000, "CUP-002", Decimal(1))]


def test_a_mapping_without_create_return_order_sends_no_return(nav):
    assert codeunit(nav).push_return(erp_return("RO-X", "return", 0)) is None
    assert nav.return_orders == {}


def test_sap_duplicate_po_refusal_after_a_lost_answer_counts_as_applied(sap, tmp_path):
    """Item 4, SAP: a service without lookup whose duplicate-PO check answers E V4 115 (mapped `done`)
    and the mapping says the ERP refuses repeats (dedupes): the resend meets the refusal, applied."""
    sap.check_po_number = True
    conn = sap_without_lookup(sap, tmp_path)
    raw = yaml.safe_load((tmp_path / "erp_sap_create_only.yaml").read_text())
    raw["calls"]["create_sales_order"]["dedupes"] = True
    (tmp_path / "erp_sap_create_only.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    conn.mapping = load_mapping("erp_sap_create_only", tmp_path)
    sap.faults.lose_answer_next = 1
    assert conn.push_sales_order(order("O-SAP-DUP")) == "O-SAP-DUP"     # known to the ERP by the hub's id
    assert len(sap.documents_for("O-SAP-DUP")) == 1
    assert len(sap.calls_to("BAPI_SALESORDER_CREATEFROMDAT2")) == 2     # resent once, refused as a duplicate

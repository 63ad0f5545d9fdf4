"""One connector, three ERPs: the sandbox ERP (WS-Security, one WSDL, dedupes), a Dynamics
NAV-style one (page/codeunit WSDLs, Basic or NTLM, German fields, no dedupe) and an SAP-style
one (BAPIs, Basic, BAPIRET2 tables, no dedupe). Each is reached by config.yaml's `erp` block
with a different environment (mapping, auth, WSDL) and nothing else."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.base import MemoryBinder, PermanentError, RetryPolicy, TransientError
from connectors.erp_soap import ErpSoapConnector
from connectors.registry import build_connector, check_system
from hub.config import SystemConfig, load_config
from hub.domain.model import Buyer, Fulfillment, FulfillmentType, OrderLine, OrderSnapshot, Sku
from sandbox.credentials import sandbox_env
from sandbox.erp_nav import NavSimulator
from sandbox.erp_sap import SapSimulator
from sandbox.erp_soap import DEFAULT_CATALOGUE, ErpItem, ErpSimulator

FAST = dict(initial=0.01, maximum=0.05, jitter=0.0)
# What each flavour takes: the simulator, the mapping, the login, and the ERP's code for WH01.
FLAVOURS = {
    "sandbox": (ErpSimulator, "erp_soap.yaml", "wsse", "1000"),
    "nav": (NavSimulator, "erp_nav.yaml", "basic", "ZENTRALE"),
    "sap": (SapSimulator, "erp_sap.yaml", "basic", "1000"),
}
EXPECTED_SKUS = [
    Sku("TEA-001", "Longjing green tea 250g", "6901234567001", "box", 12800, "A-03", 320),  # the shelf: the pick's hint
    Sku("CUP-002", "Celadon tea cup", "6901234567002", "pcs", 4500, "B-12", 180),
    Sku("POT-003", "Yixing clay teapot", "6901234567003", "pcs", 36000, None, 650),
    Sku("SET-004", "Travel tea set", "6901234567004", "set", 19900, None, 1200),
]


@pytest.fixture(scope="module", params=sorted(FLAVOURS))
def flavour(request):
    sim_cls, mapping, auth, plant = FLAVOURS[request.param]
    with sim_cls.from_env(sandbox_env()) as sim:
        yield request.param, sim, mapping, auth, plant


def erp_config(sim, mapping: str, auth: str, **env: str) -> SystemConfig:
    """config.yaml's own `erp` block, with the environment an operator would set."""
    return load_config(env={**sandbox_env(), "HUB_ERP_WSDL": sim.wsdl_url, "HUB_ERP_MAPPING": mapping,
                            "HUB_ERP_AUTH": auth, **env}).systems["erp"]


def connect(sim, mapping: str, auth: str, plant: str, attempts: int = 4, **env: str) -> ErpSoapConnector:
    binder = MemoryBinder()
    binder.bind("erp", "location", plant, "WH01")
    return build_connector("erp", erp_config(sim, mapping, auth, **env), binder,
                           RetryPolicy(attempts=attempts, **FAST))


def order(order_id: str, lines=(OrderLine("TEA-001", 2, 12800), OrderLine("CUP-002", 1, 4500))) -> OrderSnapshot:
    return OrderSnapshot(
        order_id=order_id, channel="miniprogram", status="completed", fulfillment=Fulfillment(FulfillmentType.EXPRESS),
        lines=tuple(lines), buyer=Buyer("U-7", "Li Lei", "13800001111"),
        total_fen=sum(ln.qty * ln.unit_price_fen for ln in lines), location_id="WH01",
        created_at=datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


def documents(name: str, sim, order_id: str) -> list[str]:
    if name == "sandbox":
        return [d for d in [sim.document_for(order_id)] if d]
    return sim.orders_for(order_id) if name == "nav" else sim.documents_for(order_id)


# -- the three jobs against every flavour ------------------------------------------------------

def test_product_master_reads_the_same_catalogue_from_every_erp(flavour):
    name, sim, mapping, auth, plant = flavour
    assert connect(sim, mapping, auth, plant).fetch_products() == EXPECTED_SKUS


def test_a_material_without_a_weight_has_none_in_every_erp(flavour):
    """Each ERP's own way of saying "not maintained" (absent; SAP's BRGEW 0; NAV's Bruttogewicht 0)."""
    name, sim, mapping, auth, plant = flavour
    sim.catalogue.append(ErpItem("MUG-009", "6901234567009", "Enamel mug", "EA", Decimal("39.90")))
    try:
        skus = {s.code: s for s in connect(sim, mapping, auth, plant).fetch_products()}
    finally:
        sim.catalogue.pop()
    assert skus["MUG-009"].weight_g is None and skus["TEA-001"].weight_g == 320


def test_warehouse_stock_reads_on_hand_under_the_hubs_warehouse(flavour):
    name, sim, mapping, auth, plant = flavour
    sim.set_stock(plant, "POT-003", 7)
    counts = {c.sku: c for c in connect(sim, mapping, auth, plant).fetch_warehouse_stock(["WH01"])}
    assert set(counts) == {s.code for s in EXPECTED_SKUS}
    assert (counts["POT-003"].location_id, counts["POT-003"].on_hand) == ("WH01", 7)
    assert all(c.counted_at.tzinfo is not None for c in counts.values())


def test_sales_order_push_makes_one_document_even_when_pushed_twice(flavour):
    name, sim, mapping, auth, plant = flavour
    conn = connect(sim, mapping, auth, plant)
    doc = conn.push_sales_order(order(f"O-{name}-1"))
    assert conn.push_sales_order(order(f"O-{name}-1")) == doc
    assert documents(name, sim, f"O-{name}-1") == [doc]
    assert connect(sim, mapping, auth, plant).push_sales_order(order(f"O-{name}-2")) != doc


@pytest.mark.parametrize("name", ["nav", "sap"])
def test_answer_lost_after_the_erp_saved_the_order_is_retried_without_a_second_order(name):
    """Neither a BAPI nor a NAV page dedupes: the retry must find the first order, not make a second."""
    sim_cls, mapping, auth, plant = FLAVOURS[name]
    with sim_cls.from_env(sandbox_env()) as sim:
        sim.faults.lose_answer_next = 1
        doc = connect(sim, mapping, auth, plant).push_sales_order(order("O-LOST-1"))
        assert documents(name, sim, "O-LOST-1") == [doc]
        assert len(sim.received_orders) == 1           # the retry looked up and found it


# -- SAP: BAPIRET2, item numbers, plant per line --------------------------------------------------

@pytest.fixture(scope="module")
def sap():
    with SapSimulator.from_env(sandbox_env()) as sim:
        yield sim


@pytest.fixture
def sap_erp(sap):
    sap.reset()
    return connect(sap, "erp_sap.yaml", "basic", "1000")


def test_sap_items_are_numbered_with_the_plant_per_line_and_quantity_in_schedule_lines(sap, sap_erp):
    sap_erp.push_sales_order(order("O-SAP-10", lines=(OrderLine("TEA-001", 2, 12800), OrderLine("CUP-002", 3, 4500))))
    sent = sap.received_orders[-1]
    assert [(i["ITM_NUMBER"], i["MATERIAL"], i["PLANT"], i["TARGET_QTY"]) for i in sent["items"]] == \
        [("000010", "TEA-001", "1000", Decimal(2)), ("000020", "CUP-002", "1000", Decimal(3))]
    assert [(s["ITM_NUMBER"], s["REQ_QTY"]) for s in sent["schedules"]] == [("000010", Decimal(2)),
                                                                             ("000020", Decimal(3))]
    assert [(c["ITM_NUMBER"], c["COND_TYPE"], c["COND_VALUE"]) for c in sent["conditions"]] == \
        [("000010", "PR00", Decimal("128.00")), ("000020", "PR00", Decimal("45.00"))]
    assert sent["header"] == {"DOC_TYPE": "TA", "SALES_ORG": "1000", "DISTR_CHAN": "10", "DIVISION": "00",
                                   "PURCH_NO_C": "O-SAP-10", "REF_1": "O-SAP-10", "PURCH_DATE": "2026-11-25"}


def test_sap_lock_v1_042_is_retried_to_success(sap, sap_erp):
    sap.faults.lock_next = 2
    doc = sap_erp.push_sales_order(order("O-SAP-20"))
    assert sap.documents_for("O-SAP-20") == [doc]
    assert len(sap.calls_to("BAPI_SALESORDER_CREATEFROMDAT2")) == 3


def test_sap_lock_until_attempts_run_out_is_transient(sap):
    sap.reset()
    sap.faults.lock_next = 10
    with pytest.raises(TransientError, match="E V1 042"):
        connect(sap, "erp_sap.yaml", "basic", "1000", attempts=2).push_sales_order(order("O-SAP-21"))
    assert sap.documents_for("O-SAP-21") == []


def test_sap_master_data_error_is_final_and_names_the_message(sap, sap_erp):
    with pytest.raises(PermanentError) as err:
        sap_erp.push_sales_order(order("O-SAP-30", lines=(OrderLine("NOPE-9", 1, 100),)))
    assert not isinstance(err.value, TransientError)
    assert "E M3 305: The material NOPE-9 does not exist" in str(err.value)
    assert len(sap.calls_to("BAPI_SALESORDER_CREATEFROMDAT2")) == 1


def test_sap_material_list_is_read_page_by_page(sap):
    big = SapSimulator.from_env(sandbox_env())
    big.catalogue = [ErpItem(f"M-{i:04d}", f"69{i:011d}", f"Material {i}", "EA", Decimal("1.00"))
                     for i in range(450)]
    with big:
        skus = connect(big, "erp_sap.yaml", "basic", "1000").fetch_products()
        assert len(skus) == 450 and skus[-1].code == "M-0449"
        assert len(big.calls_to("ZHUB_MATERIAL_LIST")) == 3      # pages of 200


# -- NAV: bookmarks, NTLM, localised fields ---------------------------------------------------------

def test_nav_items_are_read_by_bookmark(tmp_path):
    nav = NavSimulator.from_env(sandbox_env())
    nav.catalogue = [*DEFAULT_CATALOGUE, *[ErpItem(f"A-{i:04d}", "", f"Artikel {i}", "EA", Decimal("2.50"))
                                            for i in range(201)]]
    with nav:
        skus = connect(nav, "erp_nav.yaml", "basic", "ZENTRALE").fetch_products()
        assert len(skus) == 205 and len({s.code for s in skus}) == 205
        assert nav.calls_to("Page/Artikel.ReadMultiple") == ["Page/Artikel.ReadMultiple"] * 3


def test_nav_stock_is_asked_per_item_and_location():
    with NavSimulator.from_env(sandbox_env()) as nav:
        nav.set_stock("NORD", "TEA-001", 5)
        binder = MemoryBinder()
        binder.bind("erp", "location", "ZENTRALE", "WH01")
        binder.bind("erp", "location", "NORD", "WH02")
        conn = build_connector("erp", erp_config(nav, "erp_nav.yaml", "basic"), binder, RetryPolicy(**FAST))
        counts = {(c.location_id, c.sku): c.on_hand for c in conn.fetch_warehouse_stock(["WH01", "WH02"])}
        assert len(nav.calls_to("Codeunit/Lagerabfrage.GetItemInventory")) == 2 * len(EXPECTED_SKUS)
    assert counts[("WH02", "TEA-001")] == 5 and counts[("WH02", "CUP-002")] == 0
    assert counts[("WH01", "TEA-001")] == 100


def test_nav_over_ntlm_logs_in_for_the_wsdl_and_the_calls():
    nav = NavSimulator.from_env(sandbox_env())
    nav.auth, nav.username = "ntlm", "hub"
    with nav:
        conn = connect(nav, "erp_nav.yaml", "ntlm", "ZENTRALE", HUB_ERP_USER="CRONUS\\hub",
                       HUB_ERP_PASSWORD=nav.password)
        assert conn.fetch_products() == EXPECTED_SKUS
        doc = conn.push_sales_order(order("O-NTLM-1"))
        assert nav.orders_for("O-NTLM-1") == [doc]
        assert "CRONUS\\hub" in nav.logins


def test_nav_over_ntlm_refuses_basic_with_a_classified_error():
    nav = NavSimulator.from_env(sandbox_env())
    nav.auth = "ntlm"
    with nav:
        with pytest.raises(PermanentError, match="WSDL .* HTTP 401 .*check auth"):
            connect(nav, "erp_nav.yaml", "basic", "ZENTRALE").fetch_products()


def test_nav_order_carries_german_fields_line_numbers_and_the_location_per_line():
    with NavSimulator.from_env(sandbox_env()) as nav:
        connect(nav, "erp_nav.yaml", "basic", "ZENTRALE").push_sales_order(order("O-NAV-9"))
        sent = nav.received_orders[-1]
    assert (sent["Externe_Belegnummer"], sent["Verk_an_Deb_Nr"], sent["Lagerortcode"]) == \
        ("O-NAV-9", "10000", "ZENTRALE")
    assert [(z["Zeilennr"], z["Art"], z["Nr"], z["Lagerortcode"], z["Menge"]) for z in sent["Zeilen"]] == \
        [(10000, "Item", "TEA-001", "ZENTRALE", Decimal(2)), (20000, "Item", "CUP-002", "ZENTRALE", Decimal(1))]


def test_nav_lock_timeout_fault_is_retried():
    with NavSimulator.from_env(sandbox_env()) as nav:
        nav.faults.lock_next = 1
        doc = connect(nav, "erp_nav.yaml", "basic", "ZENTRALE").push_sales_order(order("O-NAV-10"))
        assert nav.orders_for("O-NAV-10") == [doc]


# -- login, address and configuration ------------------------------------------------------------

def test_wrong_password_on_the_wsdl_download_is_a_classified_error_not_an_http_error(sap):
    """A 401 on the WSDL download used to escape as requests.HTTPError."""
    with pytest.raises(PermanentError) as err:
        connect(sap, "erp_sap.yaml", "basic", "1000", HUB_ERP_PASSWORD="wrong").fetch_products()
    assert err.value.status == 401 and "cannot read the WSDL" in str(err.value)


def test_sandbox_wsdl_behind_basic_auth_is_a_classified_error():
    """The WS-Security-only login against an ERP that wants HTTP Basic: refused at the WSDL, classified."""
    with SapSimulator.from_env(sandbox_env()) as sim:
        with pytest.raises(PermanentError, match="HTTP 401"):
            connect(sim, "erp_sap.yaml", "wsse", "1000").fetch_products()


def test_endpoint_override_sends_calls_where_the_config_says_not_where_the_wsdl_says():
    """A WSDL saved from QA names the QA host; `endpoint` sends the calls to production."""
    with SapSimulator.from_env(sandbox_env()) as qa, SapSimulator.from_env(sandbox_env()) as prod:
        conn = connect(qa, "erp_sap.yaml", "basic", "1000", HUB_ERP_ENDPOINT=prod.wsdl_url)
        doc = conn.push_sales_order(order("O-PROD-1"))
        assert prod.documents_for("O-PROD-1") == [doc]
        assert qa.documents_for("O-PROD-1") == [] and qa.calls == []


def test_a_call_can_have_its_own_wsdl_and_endpoint(sap):
    other = SapSimulator.from_env(sandbox_env()).start()
    try:
        cfg = erp_config(sap, "erp_sap.yaml", "basic")
        path = "zsd_salesorder/800/zsd_salesorder/zsd_salesorder"
        cfg = SystemConfig(**{**cfg.model_dump(), "services": {
            "create_sales_order": {"wsdl": other.wsdl_url + path, "endpoint": other.wsdl_url + path},
            "find_sales_order": {"wsdl": other.wsdl_url + path}}})
        binder = MemoryBinder()
        binder.bind("erp", "location", "1000", "WH01")
        conn = build_connector("erp", cfg, binder, RetryPolicy(attempts=2, **FAST))
        doc = conn.push_sales_order(order("O-SVC-1"))
        assert other.documents_for("O-SVC-1") == [doc] and sap.documents_for("O-SVC-1") == []
    finally:
        other.stop()


@pytest.mark.parametrize("mapping", ["erp_soap.yaml", "erp_nav.yaml", "erp_sap.yaml", "erp_nav_codeunit.yaml"])
def test_every_flavour_passes_the_config_check(mapping):
    cfg = erp_config(ErpSimulator(port=1), mapping, "basic", HUB_ERP_WSDL="http://erp.example/ws/")
    assert check_system("erp", cfg) == []


def test_config_check_names_a_bad_auth_a_missing_mapping_and_a_wsdl_base_without_slash():
    cfg = erp_config(ErpSimulator(port=1), "erp_nav.yaml", "kerberos", HUB_ERP_WSDL="http://nav/WS/CRONUS")
    found = dict(check_system("erp", cfg))
    assert "must be one of wsse, basic, ntlm" in found["systems.erp.auth"]
    assert "must end in /" in found["systems.erp.wsdl"]
    cfg = erp_config(ErpSimulator(port=1), "erp_oracle.yaml", "basic")
    assert "cannot read" in dict(check_system("erp", cfg))["systems.erp.mapping"]

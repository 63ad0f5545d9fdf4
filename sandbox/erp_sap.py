"""An SAP-style ERP: BAPI-shaped SOAP services (spyne) as SOAMANAGER publishes them, behind
HTTP Basic, in the RFC namespace urn:sap-com:document:sap:rfc:functions.

Services, each with its own WSDL (GET on the service path):
  /sap/bc/srt/rfc/sap/zhub_material_list/800/...   ZHUB_MATERIAL_LIST(I_PAGE, I_PAGE_SIZE)
      -> ET_MATERIALS (MATNR, MAKTX, MEINS, EAN11, PRICE, LGPBE), RETURN        a customer Z-module, paged
  /sap/bc/srt/rfc/sap/bapi_material_availability/800/...
      BAPI_MATERIAL_AVAILABILITY(PLANT, MATERIAL, UNIT) -> AV_QTY_PLT, RETURN   one material, one plant
  /sap/bc/srt/rfc/sap/zsd_salesorder/800/...
      BAPI_SALESORDER_CREATEFROMDAT2(ORDER_HEADER_IN, ORDER_PARTNERS, ORDER_ITEMS_IN,
          ORDER_SCHEDULES_IN, ORDER_CONDITIONS_IN) -> SALESDOCUMENT, RETURN
      BAPI_SALESORDER_GETLIST(CUSTOMER_NUMBER, SALES_ORGANIZATION, PURCHASE_ORDER_NUMBER)
          -> SALES_ORDERS, RETURN                                   (returns too: they are sales documents)
      BAPI_CUSTOMERRETURN_CREATE(RETURN_HEADER_IN, RETURN_PARTNERS, RETURN_ITEMS_IN,
          RETURN_SCHEDULES_IN, RETURN_CONDITIONS_IN) -> SALESDOCUMENT, RETURN   a return order (RE) or
          credit memo request (G2); ORD_REASON says why, ZZREFUND_AMOUNT (a customer field) the money back

Like the real thing: errors come back inside a 200 as BAPIRET2 rows (TYPE E/A, ID, NUMBER,
MESSAGE) with an empty SALESDOCUMENT; nothing dedupes, so every create makes a new document;
items are numbered by the caller (ITM_NUMBER 000010, 000020) and schedule lines refer to
them; with `check_po_number` a second document for one customer PO is refused (E V4 115, as
SAP's duplicate-PO check set to error). Knobs: `lock_next` (V1 042: the document is being processed by another user),
`lose_answer_next` (the order is saved, the answer lost at the gateway: HTTP 504).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spyne import ComplexModel, Integer, ServiceBase, Unicode, rpc
from spyne import Decimal as XsDecimal

from .erp_soap import DEFAULT_CATALOGUE, ErpItem
from .soap_http import BasicLogin, SoapErpSimulator, soap_app

NS = "urn:sap-com:document:sap:rfc:functions"
DEFAULT_USER = "HUB_RFC"
DEFAULT_PASSWORD = "sandbox-sap-password"
CLIENT = "800"
PLANTS = ("1000",)                         # the plant the hub's WH01 is bound to
CUSTOMER = "0000100000"                    # the one-time customer the shop's orders are sold to
SALES_ORG = "1000"
# SAP's internal unit codes for the sandbox catalogue's units.
UNITS = {"BOX": "KAR", "EA": "ST", "SET": "SET", "KG": "KG"}


def service_path(service: str) -> str:
    return f"/sap/bc/srt/rfc/sap/{service}/{CLIENT}/{service}/{service}"


# -- the WSDL's types (names as SOAMANAGER generates them) --------------------------------

class Bapiret2(ComplexModel):
    __namespace__ = NS
    __type_name__ = "BAPIRET2"
    TYPE = Unicode
    ID = Unicode
    NUMBER = Unicode
    MESSAGE = Unicode
    MESSAGE_V1 = Unicode


class TableOfBapiret2(ComplexModel):
    __namespace__ = NS
    __type_name__ = "TABLE_OF_BAPIRET2"
    item = Bapiret2.customize(max_occurs="unbounded")


class Bapireturn1(ComplexModel):
    __namespace__ = NS
    __type_name__ = "BAPIRETURN1"
    TYPE = Unicode
    ID = Unicode
    NUMBER = Unicode
    MESSAGE = Unicode


class Material(ComplexModel):
    __namespace__ = NS
    __type_name__ = "ZHUB_S_MATERIAL"
    MATNR = Unicode
    MAKTX = Unicode
    MEINS = Unicode
    EAN11 = Unicode
    PRICE = XsDecimal
    WAERS = Unicode
    LGPBE = Unicode                # the storage bin (MARD-LGPBE), where the Z-module fills it
    BRGEW = XsDecimal              # gross weight; the Z-module converts it to GEWEI KG (0 when not maintained)
    GEWEI = Unicode


class TableOfMaterial(ComplexModel):
    __namespace__ = NS
    __type_name__ = "ZHUB_T_MATERIAL"
    item = Material.customize(max_occurs="unbounded")


class HeaderIn(ComplexModel):
    __namespace__ = NS
    __type_name__ = "BAPISDHD1"
    DOC_TYPE = Unicode
    SALES_ORG = Unicode
    DISTR_CHAN = Unicode
    DIVISION = Unicode
    PURCH_NO_C = Unicode
    PURCH_DATE = Unicode
    REF_1 = Unicode


class ReturnHeaderIn(ComplexModel):
    __namespace__ = NS
    __type_name__ = "BAPISDHD1_RETURN"
    DOC_TYPE = Unicode
    SALES_ORG = Unicode
    DISTR_CHAN = Unicode
    DIVISION = Unicode
    PURCH_NO_C = Unicode
    PURCH_DATE = Unicode
    REF_1 = Unicode
    ORD_REASON = Unicode
    ZZREFUND_AMOUNT = XsDecimal


class Partner(ComplexModel):
    __namespace__ = NS
    __type_name__ = "BAPIPARNR"
    PARTN_ROLE = Unicode
    PARTN_NUMB = Unicode
    NAME = Unicode


class ItemIn(ComplexModel):
    __namespace__ = NS
    __type_name__ = "BAPISDITM"
    ITM_NUMBER = Unicode
    MATERIAL = Unicode
    PLANT = Unicode
    TARGET_QTY = XsDecimal
    TARGET_QU = Unicode


class ScheduleIn(ComplexModel):
    __namespace__ = NS
    __type_name__ = "BAPISCHDL"
    ITM_NUMBER = Unicode
    REQ_QTY = XsDecimal


class ConditionIn(ComplexModel):
    __namespace__ = NS
    __type_name__ = "BAPICOND"
    ITM_NUMBER = Unicode
    COND_TYPE = Unicode
    COND_VALUE = XsDecimal
    CURRENCY = Unicode


def _table(model: type, name: str) -> type:
    return type(name, (ComplexModel,), {"__namespace__": NS, "__type_name__": name,
                                        "item": model.customize(max_occurs="unbounded")})


TablePartners = _table(Partner, "TABLE_OF_BAPIPARNR")
TableItems = _table(ItemIn, "TABLE_OF_BAPISDITM")
TableSchedules = _table(ScheduleIn, "TABLE_OF_BAPISCHDL")
TableConditions = _table(ConditionIn, "TABLE_OF_BAPICOND")


class SalesOrderRow(ComplexModel):
    __namespace__ = NS
    __type_name__ = "BAPIORDERS"
    SD_DOC = Unicode
    ITM_NUMBER = Unicode
    MATERIAL = Unicode
    REQ_QTY = XsDecimal
    PURCH_NO = Unicode
    SALES_ORG = Unicode


TableOrders = _table(SalesOrderRow, "TABLE_OF_BAPIORDERS")


class CreateResponse(ComplexModel):
    __namespace__ = NS
    SALESDOCUMENT = Unicode
    RETURN = TableOfBapiret2


def _sim(ctx: Any) -> SapSimulator:
    return ctx.app.simulator


class MaterialListService(ServiceBase):
    @rpc(Integer, Integer, _returns=(TableOfMaterial, TableOfBapiret2),
         _out_variable_names=("ET_MATERIALS", "RETURN"), _body_style="wrapped", _operation_name="ZHUB_MATERIAL_LIST")
    def material_list(ctx, I_PAGE, I_PAGE_SIZE):
        return _sim(ctx).op_material_list(I_PAGE, I_PAGE_SIZE)


class AvailabilityService(ServiceBase):
    @rpc(Unicode, Unicode, Unicode, _returns=(XsDecimal, Bapireturn1), _out_variable_names=("AV_QTY_PLT", "RETURN"),
         _body_style="wrapped", _operation_name="BAPI_MATERIAL_AVAILABILITY")
    def availability(ctx, PLANT, MATERIAL, UNIT):
        return _sim(ctx).op_availability(PLANT, MATERIAL)


class SalesOrderService(ServiceBase):
    @rpc(HeaderIn, TablePartners, TableItems, TableSchedules, TableConditions,
         _returns=(Unicode, TableOfBapiret2), _out_variable_names=("SALESDOCUMENT", "RETURN"),
         _body_style="wrapped", _operation_name="BAPI_SALESORDER_CREATEFROMDAT2")
    def create(ctx, ORDER_HEADER_IN, ORDER_PARTNERS, ORDER_ITEMS_IN, ORDER_SCHEDULES_IN, ORDER_CONDITIONS_IN):
        return _sim(ctx).op_create(ORDER_HEADER_IN, ORDER_PARTNERS, ORDER_ITEMS_IN, ORDER_SCHEDULES_IN,
                                   ORDER_CONDITIONS_IN)

    @rpc(ReturnHeaderIn, TablePartners, TableItems, TableSchedules, TableConditions,
         _returns=(Unicode, TableOfBapiret2), _out_variable_names=("SALESDOCUMENT", "RETURN"),
         _body_style="wrapped", _operation_name="BAPI_CUSTOMERRETURN_CREATE")
    def create_return(ctx, RETURN_HEADER_IN, RETURN_PARTNERS, RETURN_ITEMS_IN, RETURN_SCHEDULES_IN,
                      RETURN_CONDITIONS_IN):
        return _sim(ctx).op_create(RETURN_HEADER_IN, RETURN_PARTNERS, RETURN_ITEMS_IN, RETURN_SCHEDULES_IN,
                                   RETURN_CONDITIONS_IN, operation="BAPI_CUSTOMERRETURN_CREATE")

    @rpc(Unicode, Unicode, Unicode, _returns=(TableOrders, Bapireturn1), _out_variable_names=("SALES_ORDERS", "RETURN"),
         _body_style="wrapped", _operation_name="BAPI_SALESORDER_GETLIST")
    def getlist(ctx, CUSTOMER_NUMBER, SALES_ORGANIZATION, PURCHASE_ORDER_NUMBER):
        return _sim(ctx).op_getlist(CUSTOMER_NUMBER, SALES_ORGANIZATION, PURCHASE_ORDER_NUMBER)


# -- state, knobs, record -------------------------------------------------------------------

@dataclass
class SapSimulator(SoapErpSimulator):
    """Knobs (`faults`): lock_next answers E V1 042 on create; lose_answer_next saves, then 504s."""

    username: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    catalogue: list[ErpItem] = field(default_factory=lambda: list(DEFAULT_CATALOGUE))
    first_plant: str = PLANTS[0]
    name: str = "erp_sap"
    check_po_number: bool = False          # refuse a second document for the same customer PO (V4 115)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.documents: dict[str, dict[str, Any]] = {}            # SALESDOCUMENT -> the order as saved
        self._next_doc = 10001

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> SapSimulator:
        return cls(port=port, username=env.get("HUB_ERP_USER", DEFAULT_USER),
                   password=env.get("HUB_ERP_PASSWORD", DEFAULT_PASSWORD))

    def documents_for(self, purch_no: str) -> list[str]:
        with self._lock:
            return [doc for doc, o in self.documents.items() if o["PURCH_NO_C"] == purch_no]

    # -- the function modules ------------------------------------------------------------
    def op_material_list(self, page: int | None, size: int | None) -> tuple[list[Material], list[Bapiret2]]:
        self._record("ZHUB_MATERIAL_LIST")
        page, size = max(page or 1, 1), min(max(size or 100, 1), 1000)
        rows = self.catalogue[(page - 1) * size: page * size]
        return ({"item": [Material(MATNR=i.item_no, MAKTX=i.description, MEINS=UNITS.get(i.unit, i.unit),
                                   EAN11=i.barcode, PRICE=i.price_yuan, WAERS="CNY",
                                   LGPBE=i.shelf, BRGEW=i.weight_kg or Decimal("0"), GEWEI="KG") for i in rows]},
                {"item": []})

    def op_availability(self, plant: str | None, material: str | None) -> tuple[Decimal | None, Bapireturn1]:
        self._record("BAPI_MATERIAL_AVAILABILITY")
        with self._lock:
            if material not in {i.item_no for i in self.catalogue}:
                return None, Bapireturn1(TYPE="E", ID="M3", NUMBER="305",
                                         MESSAGE=f"The material {material} does not exist or is not activated")
            return self._stock.get((plant or "", material), Decimal(0)), Bapireturn1(TYPE="", ID="", NUMBER="")

    def op_create(self, header: HeaderIn | None, partners: Any, items: Any, schedules: Any,
                  conditions: Any, operation: str = "BAPI_SALESORDER_CREATEFROMDAT2",
                  ) -> tuple[str, dict[str, list[Bapiret2]]]:
        self._record(operation)
        item_rows = list(getattr(items, "item", None) or [])
        schedule_rows = list(getattr(schedules, "item", None) or [])
        record = {"operation": operation, "PURCH_NO_C": getattr(header, "PURCH_NO_C", None), "header": _plain(header),
                  "partners": [_plain(p) for p in getattr(partners, "item", None) or []],
                  "items": [_plain(i) for i in item_rows], "schedules": [_plain(s) for s in schedule_rows],
                  "conditions": [_plain(c) for c in getattr(conditions, "item", None) or []]}
        with self._lock:
            self.received_orders.append(record)
            if self.faults.lock_next > 0:
                self.faults.lock_next -= 1
                return "", _ret(("E", "V1", "042", "Sales document 0000010000 is currently being processed "
                                                   "by user BATCHJOB"), _NOT_SAVED)
            problems = self._check(header, item_rows, schedule_rows)
            po = getattr(header, "PURCH_NO_C", None)
            if self.check_po_number and po and any(o["PURCH_NO_C"] == po for o in self.documents.values()):
                # Customizing "check purchase order number" set to error: the ERP's own duplicate refusal.
                problems = [("E", "V4", "115", f"A sales document already exists for purchase order {po}")]
            if problems:
                return "", _ret(*problems, _NOT_SAVED)
            doc = f"{self._next_doc:010d}"
            self._next_doc += 1
            self.documents[doc] = record
            self._saved()
            return doc, _ret(("S", "V1", "311", f"Standard Order {doc} has been saved"))

    def _check(self, header: Any, items: list[Any], schedules: list[Any]) -> list[tuple[str, ...]]:
        if header is None or not header.DOC_TYPE or not header.SALES_ORG:
            return [("E", "V1", "384", "Sales document type and sales organization are required")]
        if not items:
            return [("E", "V1", "761", "No item data was entered")]
        problems: list[tuple[str, ...]] = []
        materials = {i.item_no for i in self.catalogue}
        numbers = [it.ITM_NUMBER for it in items]
        for it in items:
            if not re.fullmatch(r"\d{6}", it.ITM_NUMBER or "") or numbers.count(it.ITM_NUMBER) > 1:
                problems.append(("E", "V1", "555", f"Item number {it.ITM_NUMBER!r} is not a unique 6-digit number"))
            if it.MATERIAL not in materials:
                problems.append(("E", "M3", "305", f"The material {it.MATERIAL} does not exist or is not activated"))
            elif (it.PLANT, it.MATERIAL) not in self._stock:
                problems.append(("E", "M3", "351", f"Material {it.MATERIAL} not maintained in plant {it.PLANT}"))
        for s in schedules:
            if s.ITM_NUMBER not in numbers:
                problems.append(("E", "V1", "439", f"Schedule line refers to unknown item {s.ITM_NUMBER}"))
            elif not s.REQ_QTY or s.REQ_QTY <= 0:
                problems.append(("E", "V1", "440", f"Item {s.ITM_NUMBER}: requested quantity must be positive"))
        if not schedules:
            problems.append(("E", "V1", "441", "No schedule lines: nothing would be delivered"))
        return problems

    def op_getlist(self, customer: str | None, sales_org: str | None,
                   purch_no: str | None) -> tuple[dict[str, list[SalesOrderRow]], Bapireturn1]:
        self._record("BAPI_SALESORDER_GETLIST")
        with self._lock:
            rows = [SalesOrderRow(SD_DOC=doc, ITM_NUMBER=it["ITM_NUMBER"], MATERIAL=it["MATERIAL"],
                                  REQ_QTY=it["TARGET_QTY"], PURCH_NO=o["PURCH_NO_C"], SALES_ORG=SALES_ORG)
                    for doc, o in sorted(self.documents.items())
                    if (not purch_no or o["PURCH_NO_C"] == purch_no) for it in o["items"]]
        return {"item": rows}, Bapireturn1(TYPE="", ID="", NUMBER="")

    # -- lifecycle -------------------------------------------------------------------
    def routes(self) -> dict[str, Any]:
        return {
            service_path("zhub_material_list"): soap_app([MaterialListService], NS, "ZHUB_MATERIAL_LIST", self),
            service_path("bapi_material_availability"):
                soap_app([AvailabilityService], NS, "BAPI_MATERIAL_AVAILABILITY", self),
            service_path("zsd_salesorder"): soap_app([SalesOrderService], NS, "ZSD_SALESORDER", self),
        }

    def login(self) -> BasicLogin:
        return BasicLogin(self.username, self.password, "SAP NetWeaver Application Server")

    @property
    def wsdl_url(self) -> str:
        """The base the SAP mapping's relative WSDL paths hang from."""
        return f"{self.base_url}/sap/bc/srt/rfc/sap/"


_NOT_SAVED = ("E", "V4", "219", "Sales document was not changed")


def _ret(*rows: tuple[str, ...]) -> dict[str, list[Bapiret2]]:
    return {"item": [Bapiret2(TYPE=t, ID=i, NUMBER=n, MESSAGE=m) for t, i, n, m in rows]}


def _plain(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    return {k: getattr(obj, k) for k in type(obj)._type_info if getattr(obj, k, None) is not None}


def sandbox_bindings(system: str = "erp") -> list[tuple[str, str, str, str]]:
    return [(system, "location", "1000", "WH01")]


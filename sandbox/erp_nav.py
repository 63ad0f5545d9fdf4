"""A Dynamics NAV-style ERP: page and codeunit SOAP web services (spyne), one WSDL per
service, HTTP Basic (NavUserPassword) or NTLM (Windows login), German field names.

  /DynamicsNAV/WS/CRONUS/Page/Artikel            Read, ReadMultiple        items
  /DynamicsNAV/WS/CRONUS/Page/Lagerbestand       ReadMultiple              stock per item and location
  /DynamicsNAV/WS/CRONUS/Page/Verkaufsauftrag    Read, ReadMultiple, Create  sales orders (with lines)
  /DynamicsNAV/WS/CRONUS/Page/Verkaufsreklamation  ReadMultiple, Create   sales return orders (with lines)
  /DynamicsNAV/WS/CRONUS/Codeunit/Lagerabfrage   GetItemInventory(itemNo, locationCode) -> return_value
  /DynamicsNAV/WS/CRONUS/Codeunit/Verkaufsbuchung  CreateSalesLine(orderNo, lineNo, itemNo, locationCode,
                                                   quantity, unitPrice) -> return_value   one flat call per line

ReadMultiple takes `filter` (repeated {Field, Criteria}, at least one: an empty Criteria
means all, as NAV's own WSDL has it), `bookmarkKey` and `setSize`, and
answers records that each carry a `Key`; the next page starts after `bookmarkKey`. Create
never dedupes: a second Create of the same order is a second order. Errors are SOAP Faults
with NAV's exception names as fault codes; a second CreateSalesLine of the same (orderNo,
lineNo) is refused with NavCSideDuplicateKeyException ("The Sales Line already exists").
Knobs: `lock_next` (a locked table on Create), `lose_answer_next` (the order is created, the answer lost: HTTP 504).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from spyne import ComplexModel, Date, Integer, ServiceBase, Unicode, rpc
from spyne import Decimal as XsDecimal
from spyne.model.fault import Fault

from .erp_soap import DEFAULT_CATALOGUE, ErpItem
from .soap_http import BasicLogin, NtlmLogin, SoapErpSimulator, soap_app

BASE_PATH = "/DynamicsNAV/WS/CRONUS/"
DEFAULT_USER = "hub"
DEFAULT_PASSWORD = "sandbox-nav-password"
DOMAIN = "CRONUS"
LOCATIONS = ("ZENTRALE",)                  # the location code the hub's WH01 is bound to
CUSTOMER = "10000"                         # the debitor the shop's orders are sold to
UNITS = {"BOX": "KARTON", "EA": "STÜCK", "SET": "SATZ", "KG": "KG"}   # German unit codes
_EXC = "Microsoft.Dynamics.Nav.Types.Exceptions."
NOT_FOUND, LOCKED, VALIDATION = _EXC + "NavNCLRecordNotFoundException", _EXC + "NavNCLLockTimeoutException", \
    _EXC + "NavTestFieldException"
DUPLICATE = _EXC + "NavCSideDuplicateKeyException"


def _ns(kind: str, name: str) -> str:
    return f"urn:microsoft-dynamics-schemas/{kind}/{name.lower()}"


NS_ITEM, NS_STOCK, NS_ORDER = _ns("page", "Artikel"), _ns("page", "Lagerbestand"), _ns("page", "Verkaufsauftrag")
NS_QUERY = _ns("codeunit", "Lagerabfrage")
NS_RETURN = _ns("page", "Verkaufsreklamation")
NS_POSTING = _ns("codeunit", "Verkaufsbuchung")


def _filter_type(ns: str, page: str, fields: list[str]) -> type:
    fields_enum = Unicode(values=fields, type_name=f"{page}_Fields")
    return type(f"{page}_Filter", (ComplexModel,), {"__namespace__": ns, "__type_name__": f"{page}_Filter",
                                                   "Field": fields_enum(min_occurs=1),
                                                   "Criteria": Unicode})


class Artikel(ComplexModel):
    __namespace__ = NS_ITEM
    Key = Unicode
    Nr = Unicode
    Beschreibung = Unicode
    Basiseinheitencode = Unicode
    VK_Preis = XsDecimal
    EAN_Code = Unicode
    Regalnr = Unicode              # the item card's "Shelf No."
    Bruttogewicht = XsDecimal      # gross weight, kg by NAV's convention (0 when not set)


class Lagerbestand(ComplexModel):
    __namespace__ = NS_STOCK
    Key = Unicode
    Artikelnr = Unicode
    Lagerortcode = Unicode
    Lagerbestand = XsDecimal


class Verkaufsauftrag_Zeile(ComplexModel):  # noqa: N801 - NAV's own type name
    __namespace__ = NS_ORDER
    Key = Unicode
    Zeilennr = Integer
    Art = Unicode(values=["_blank_", "G_L_Account", "Item", "Resource"])
    Nr = Unicode
    Lagerortcode = Unicode
    Menge = XsDecimal
    VK_Preis = XsDecimal


class Verkaufszeilen(ComplexModel):
    __namespace__ = NS_ORDER
    __type_name__ = "Verkaufsauftrag_Zeile_List"
    Verkaufsauftrag_Zeile = Verkaufsauftrag_Zeile.customize(max_occurs="unbounded")


class Verkaufsauftrag(ComplexModel):
    __namespace__ = NS_ORDER
    Key = Unicode
    Nr = Unicode
    Verk_an_Deb_Nr = Unicode
    Verk_an_Name = Unicode
    Externe_Belegnummer = Unicode
    Lagerortcode = Unicode
    Auftragsdatum = Date
    Verkaufszeilen = Verkaufszeilen


class Verkaufsreklamation_Zeile(ComplexModel):  # noqa: N801 - NAV's own type name
    __namespace__ = NS_RETURN
    Key = Unicode
    Zeilennr = Integer
    Art = Unicode(values=["_blank_", "G_L_Account", "Item", "Resource"])
    Nr = Unicode
    Lagerortcode = Unicode
    Menge = XsDecimal
    VK_Preis = XsDecimal


class Reklamationszeilen(ComplexModel):
    __namespace__ = NS_RETURN
    __type_name__ = "Verkaufsreklamation_Zeile_List"
    Verkaufsreklamation_Zeile = Verkaufsreklamation_Zeile.customize(max_occurs="unbounded")


class Verkaufsreklamation(ComplexModel):
    """A sales return order; `Erstattungsbetrag` (money paid back) is the retailer's page extension."""

    __namespace__ = NS_RETURN
    Key = Unicode
    Nr = Unicode
    Verk_an_Deb_Nr = Unicode
    Externe_Belegnummer = Unicode          # the hub's return id
    Ihre_Referenz = Unicode                # the hub's order id
    Rueckgabegrundcode = Unicode(values=["RUECKGABE", "ERSTATTUNG"])
    Erstattungsbetrag = XsDecimal
    Lagerortcode = Unicode
    Belegdatum = Date
    Reklamationszeilen = Reklamationszeilen


ArtikelFilter = _filter_type(NS_ITEM, "Artikel", ["Nr", "Beschreibung", "Basiseinheitencode", "VK_Preis", "EAN_Code"])
LagerFilter = _filter_type(NS_STOCK, "Lagerbestand", ["Artikelnr", "Lagerortcode"])
AuftragFilter = _filter_type(NS_ORDER, "Verkaufsauftrag", ["Nr", "Verk_an_Deb_Nr", "Externe_Belegnummer",
                                                           "Lagerortcode"])
ReklFilter = _filter_type(NS_RETURN, "Verkaufsreklamation", ["Nr", "Externe_Belegnummer", "Ihre_Referenz"])


def _sim(ctx: Any) -> NavSimulator:
    return ctx.app.simulator


def _page_service(name: str, model: type, filter_model: type, creates: bool = False) -> type:
    many = model.customize(max_occurs="unbounded")
    result = type(f"{name}_List", (ComplexModel,), {"__namespace__": model.__namespace__,
                                                     "__type_name__": f"{name}_List", name: many})

    @rpc(Unicode(min_occurs=1), _returns=model, _out_variable_name=name, _body_style="wrapped")
    def Read(ctx, Nr):  # noqa: N802, N803 - the WSDL's names
        return _sim(ctx).read(name, Nr)

    # As a real NAV page WSDL: `filter` is required (minOccurs=1); an empty Criteria means all.
    @rpc(filter_model.customize(min_occurs=1, max_occurs="unbounded"), Unicode, Integer(min_occurs=1),
         _returns=result, _out_variable_name="ReadMultiple_Result", _body_style="wrapped")
    def ReadMultiple(ctx, filter, bookmarkKey, setSize):  # noqa: N802, N803, A002
        return {name: _sim(ctx).read_multiple(name, filter or [], bookmarkKey, setSize)}

    @rpc(model, _returns=model, _out_variable_name=name, _in_variable_names={"record": name},
         _body_style="wrapped")
    def Create(ctx, record):  # noqa: N802
        return _sim(ctx).create(record)

    methods = {"Read": Read, "ReadMultiple": ReadMultiple, **({"Create": Create} if creates else {})}
    return type(f"{name}_Port", (ServiceBase,), methods)


class Lagerabfrage(ServiceBase):
    @rpc(Unicode(min_occurs=1), Unicode, _returns=XsDecimal, _out_variable_name="return_value",
         _body_style="wrapped")
    def GetItemInventory(ctx, itemNo, locationCode):  # noqa: N802, N803
        return _sim(ctx).item_inventory(itemNo, locationCode)


class ReturnsPage(ServiceBase):
    __service_name__ = "Verkaufsreklamation_Port"

    @rpc(ReklFilter.customize(min_occurs=1, max_occurs="unbounded"), Unicode, Integer(min_occurs=1),
         _returns=type("Verkaufsreklamation_List", (ComplexModel,), {
             "__namespace__": NS_RETURN, "__type_name__": "Verkaufsreklamation_List",
             "Verkaufsreklamation": Verkaufsreklamation.customize(max_occurs="unbounded")}),
         _out_variable_name="ReadMultiple_Result", _body_style="wrapped")
    def ReadMultiple(ctx, filter, bookmarkKey, setSize):  # noqa: N802, N803, A002
        return {"Verkaufsreklamation": _sim(ctx).read_returns(filter or [], setSize)}

    @rpc(Verkaufsreklamation, _returns=Verkaufsreklamation, _out_variable_name="Verkaufsreklamation",
         _in_variable_names={"record": "Verkaufsreklamation"}, _body_style="wrapped")
    def Create(ctx, record):  # noqa: N802
        return _sim(ctx).create_return(record)


class Verkaufsbuchung(ServiceBase):
    @rpc(Unicode(min_occurs=1), Integer(min_occurs=1), Unicode(min_occurs=1), Unicode, XsDecimal(min_occurs=1),
         XsDecimal, _returns=Unicode, _out_variable_name="return_value", _body_style="wrapped")
    def CreateSalesLine(ctx, orderNo, lineNo, itemNo, locationCode, quantity, unitPrice):  # noqa: N802, N803
        return _sim(ctx).create_line(orderNo, lineNo, itemNo, locationCode, quantity, unitPrice)


@dataclass
class NavSimulator(SoapErpSimulator):
    """Knobs (`faults`): lock_next fails Create with a lock timeout; lose_answer_next creates, then 504s.
    `auth` is basic (NavUserPassword) or ntlm (Windows)."""

    username: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    auth: str = "basic"
    catalogue: list[ErpItem] = field(default_factory=lambda: list(DEFAULT_CATALOGUE))
    first_plant: str = LOCATIONS[0]
    name: str = "erp_nav"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.orders: dict[str, dict[str, Any]] = {}        # Nr -> the order as created
        self.sales_lines: dict[tuple[str, int], dict[str, Any]] = {}   # (orderNo, lineNo) -> the codeunit's line
        self.return_orders: dict[str, dict[str, Any]] = {}  # Nr -> the sales return order as created
        self._next_no = 1001

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> NavSimulator:
        return cls(port=port, username=env.get("HUB_ERP_USER", DEFAULT_USER),
                   password=env.get("HUB_ERP_PASSWORD", DEFAULT_PASSWORD))

    def lines_for(self, order_no: str) -> list[dict[str, Any]]:
        """The lines the per-line codeunit holds for an order, by line number."""
        with self._lock:
            return [ln for (no, _), ln in sorted(self.sales_lines.items()) if no == order_no]

    def orders_for(self, external_no: str) -> list[str]:
        with self._lock:
            return [nr for nr, o in self.orders.items() if o["Externe_Belegnummer"] == external_no]

    # -- pages and codeunit ------------------------------------------------------------
    def _records(self, page: str) -> list[Any]:
        if page == "Artikel":
            return [Artikel(Key=f"32;GwAAAAJ7/{i.item_no}", Nr=i.item_no, Beschreibung=i.description,
                            Basiseinheitencode=UNITS.get(i.unit, i.unit), VK_Preis=i.price_yuan, EAN_Code=i.barcode,
                            Regalnr=i.shelf, Bruttogewicht=i.weight_kg or Decimal("0"))
                    for i in self.catalogue]
        if page == "Lagerbestand":
            return [Lagerbestand(Key=f"27;{item};{loc}", Artikelnr=item, Lagerortcode=loc, Lagerbestand=qty)
                    for (loc, item), qty in sorted(self._stock.items())]
        return [self._order_record(nr, o) for nr, o in sorted(self.orders.items())]

    def read(self, page: str, nr: str) -> Any:
        with self._lock:
            self.calls.append(f"Page/{page}.Read")
            found = [r for r in self._records(page) if getattr(r, "Nr", None) == nr]
        if not found:
            raise Fault(NOT_FOUND, f"Der Datensatz {page} Nr.='{nr}' ist nicht vorhanden.")
        return found[0]

    def read_multiple(self, page: str, filters: list[Any], bookmark: str | None, size: int | None) -> list[Any]:
        with self._lock:
            self.calls.append(f"Page/{page}.ReadMultiple")
            rows = self._records(page)
        for f in filters:
            rows = [r for r in rows if _matches(getattr(r, f.Field, None), f.Criteria)]
        if bookmark:
            keys = [r.Key for r in rows]
            if bookmark not in keys:
                raise Fault(NOT_FOUND, f"The bookmark {bookmark!r} is not valid")
            rows = rows[keys.index(bookmark) + 1:]
        return rows[: size or len(rows)] if size and size > 0 else rows

    def item_inventory(self, item_no: str, location: str | None) -> Decimal:
        with self._lock:
            self.calls.append("Codeunit/Lagerabfrage.GetItemInventory")
            if item_no not in {i.item_no for i in self.catalogue}:
                raise Fault(NOT_FOUND, f"Artikel Nr.='{item_no}' ist nicht vorhanden.")
            if location:
                return self._stock.get((location, item_no), Decimal(0))
            return sum((q for (_, i), q in self._stock.items() if i == item_no), Decimal(0))

    def create_line(self, order_no: str, line_no: int, item_no: str, location: str | None, qty: Decimal,
                    unit_price: Decimal | None) -> str:
        with self._lock:
            self.calls.append("Codeunit/Verkaufsbuchung.CreateSalesLine")
            record = {"orderNo": order_no, "lineNo": line_no, "itemNo": item_no, "locationCode": location,
                      "quantity": qty, "unitPrice": unit_price}
            self.received_orders.append(record)
            if (order_no, line_no) in self.sales_lines:
                raise Fault(DUPLICATE, "The Sales Line already exists. Identification fields and values: "
                                       f"Document Type='Order',Document No.='{order_no}',Line No.='{line_no}'")
            if item_no not in {i.item_no for i in self.catalogue}:
                raise Fault(NOT_FOUND, f"Artikel Nr.='{item_no}' ist nicht vorhanden.")
            if not qty or qty <= 0:
                raise Fault(VALIDATION, f"Menge in Zeile {line_no} muss positiv sein.")
            self.sales_lines[(order_no, line_no)] = record
            self._saved()
            return f"37;{order_no};{line_no}"

    def returns_for(self, external_no: str) -> list[str]:
        with self._lock:
            return [nr for nr, o in self.return_orders.items() if o["Externe_Belegnummer"] == external_no]

    def read_returns(self, filters: list[Any], size: int | None) -> list[Verkaufsreklamation]:
        with self._lock:
            self.calls.append("Page/Verkaufsreklamation.ReadMultiple")
            rows = [self._return_record(nr, o) for nr, o in sorted(self.return_orders.items())]
        for f in filters:
            rows = [r for r in rows if _matches(getattr(r, f.Field, None), f.Criteria)]
        return rows[: size] if size and size > 0 else rows

    def create_return(self, rec: Verkaufsreklamation | None) -> Verkaufsreklamation:
        with self._lock:
            self.calls.append("Page/Verkaufsreklamation.Create")
            lines = list(getattr(getattr(rec, "Reklamationszeilen", None), "Verkaufsreklamation_Zeile", None) or [])
            record = {k: getattr(rec, k, None) for k in ("Externe_Belegnummer", "Ihre_Referenz", "Verk_an_Deb_Nr",
                                                         "Rueckgabegrundcode", "Erstattungsbetrag", "Lagerortcode",
                                                         "Belegdatum")}
            record["Zeilen"] = [{"Zeilennr": ln.Zeilennr, "Art": ln.Art, "Nr": ln.Nr, "Lagerortcode": ln.Lagerortcode,
                                 "Menge": ln.Menge, "VK_Preis": ln.VK_Preis} for ln in lines]
            self.received_orders.append({"page": "Verkaufsreklamation", **record})
            self._validate(record)
            nr = f"VR{self._next_no:06d}"
            self._next_no += 1
            self.return_orders[nr] = record
            self._saved()
            return self._return_record(nr, record)

    @staticmethod
    def _return_record(nr: str, o: dict[str, Any]) -> Verkaufsreklamation:
        lines = [Verkaufsreklamation_Zeile(Key=f"37;{nr};{ln['Zeilennr']}", **ln) for ln in o["Zeilen"]]
        head = {k: v for k, v in o.items() if k != "Zeilen"}
        return Verkaufsreklamation(Key=f"36;{nr}", Nr=nr, **head,
                                   Reklamationszeilen=Reklamationszeilen(Verkaufsreklamation_Zeile=lines))

    def create(self, order: Verkaufsauftrag | None) -> Verkaufsauftrag:
        with self._lock:
            self.calls.append("Page/Verkaufsauftrag.Create")
            lines = list(getattr(getattr(order, "Verkaufszeilen", None), "Verkaufsauftrag_Zeile", None) or [])
            record = {"Externe_Belegnummer": getattr(order, "Externe_Belegnummer", None),
                      "Verk_an_Deb_Nr": getattr(order, "Verk_an_Deb_Nr", None),
                      "Verk_an_Name": getattr(order, "Verk_an_Name", None),
                      "Lagerortcode": getattr(order, "Lagerortcode", None),
                      "Auftragsdatum": getattr(order, "Auftragsdatum", None),
                      "Zeilen": [{"Zeilennr": ln.Zeilennr, "Art": ln.Art, "Nr": ln.Nr, "Lagerortcode": ln.Lagerortcode,
                                  "Menge": ln.Menge, "VK_Preis": ln.VK_Preis} for ln in lines]}
            self.received_orders.append(record)
            if self.faults.lock_next > 0:
                self.faults.lock_next -= 1
                raise Fault(LOCKED, "Die Tabelle Verkaufskopf ist durch einen anderen Benutzer gesperrt.")
            self._validate(record)
            nr = f"AB{self._next_no:06d}"
            self._next_no += 1
            self.orders[nr] = record
            self._saved()
            return self._order_record(nr, record)

    def _validate(self, record: dict[str, Any]) -> None:
        if not record["Verk_an_Deb_Nr"]:
            raise Fault(VALIDATION, "Verk. an Deb.-Nr. muss einen Wert enthalten.")
        if not record["Zeilen"]:
            raise Fault(VALIDATION, "Es gibt nichts zu buchen: der Auftrag hat keine Zeilen.")
        items = {i.item_no for i in self.catalogue}
        for ln in record["Zeilen"]:
            if ln["Art"] != "Item" or ln["Nr"] not in items:
                raise Fault(NOT_FOUND, f"Artikel Nr.='{ln['Nr']}' ist nicht vorhanden.")
            if not ln["Menge"] or ln["Menge"] <= 0:
                raise Fault(VALIDATION, f"Menge in Zeile {ln['Zeilennr']} muss positiv sein.")
            if ln["Lagerortcode"] not in {loc for loc, _ in self._stock}:
                raise Fault(NOT_FOUND, f"Lagerort Code='{ln['Lagerortcode']}' ist nicht vorhanden.")

    @staticmethod
    def _order_record(nr: str, o: dict[str, Any]) -> Verkaufsauftrag:
        lines = [Verkaufsauftrag_Zeile(Key=f"37;{nr};{ln['Zeilennr']}", **ln) for ln in o["Zeilen"]]
        return Verkaufsauftrag(Key=f"36;{nr}", Nr=nr, Verk_an_Deb_Nr=o["Verk_an_Deb_Nr"],
                               Verk_an_Name=o["Verk_an_Name"], Externe_Belegnummer=o["Externe_Belegnummer"],
                               Lagerortcode=o["Lagerortcode"], Auftragsdatum=o["Auftragsdatum"],
                               Verkaufszeilen=Verkaufszeilen(Verkaufsauftrag_Zeile=lines))

    # -- lifecycle -------------------------------------------------------------------
    def routes(self) -> dict[str, Any]:
        p = BASE_PATH.rstrip("/")
        return {
            f"{p}/Page/Artikel": soap_app([_page_service("Artikel", Artikel, ArtikelFilter)], NS_ITEM,
                                          "Artikel_Service", self),
            f"{p}/Page/Lagerbestand": soap_app([_page_service("Lagerbestand", Lagerbestand, LagerFilter)],
                                               NS_STOCK, "Lagerbestand_Service", self),
            f"{p}/Page/Verkaufsauftrag": soap_app([_page_service("Verkaufsauftrag", Verkaufsauftrag, AuftragFilter,
                                                                 creates=True)],
                                                  NS_ORDER, "Verkaufsauftrag_Service", self),
            f"{p}/Page/Verkaufsreklamation": soap_app([ReturnsPage], NS_RETURN, "Verkaufsreklamation_Service", self),
            f"{p}/Codeunit/Lagerabfrage": soap_app([Lagerabfrage], NS_QUERY, "Lagerabfrage", self),
            f"{p}/Codeunit/Verkaufsbuchung": soap_app([Verkaufsbuchung], NS_POSTING, "Verkaufsbuchung", self),
        }

    def login(self) -> BasicLogin | NtlmLogin:
        if self.auth == "ntlm":
            return NtlmLogin(self.username, self.password, DOMAIN)
        return BasicLogin(self.username, self.password, "Microsoft Dynamics NAV")

    @property
    def wsdl_url(self) -> str:
        """The company's web-service base: the NAV mapping's Page/… and Codeunit/… hang from it."""
        return self.base_url + BASE_PATH


def _matches(value: Any, criteria: str | None) -> bool:
    """NAV filter criteria, the forms the hub uses: an exact value, or `a|b` alternatives."""
    if criteria in (None, ""):
        return True
    text = value.isoformat() if isinstance(value, date) else str(value if value is not None else "")
    return text in str(criteria).split("|")

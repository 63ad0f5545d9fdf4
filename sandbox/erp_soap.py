"""The retailer's ERP, played by a real SOAP 1.1 server (spyne) with a WSDL at /erp?wsdl.

Operations: GetProductMaster (the material master, prices in yuan as decimals),
GetWarehouseStock (on-hand per plant and item with an as-of time) and CreateSalesOrder
(returns the ERP document number; idempotent on the hub's order id, ExternalRef).
Every call needs a WS-Security UsernameToken (PasswordText or PasswordDigest); a wrong
password is a SOAP Fault. The ERP's plant codes differ from the hub's ids: plant 1000
is the hub's WH01, so connectors must cross-reference through the binder.

Tests turn the knobs in `faults` and read `calls` and `received_orders`.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from spyne import Application, Array, ComplexModel, DateTime, Integer, ServiceBase, Unicode, rpc
from spyne import Decimal as XsDecimal
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from werkzeug.serving import WSGIRequestHandler, make_server

from .base import SandboxSystem

NS = "urn:sandbox:erp:sales:v1"
DEFAULT_USER = "hub"
DEFAULT_PASSWORD = "sandbox-erp-password"
CST = timezone(timedelta(hours=8), "CST")
_WSSE = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}"
_WSU = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}"
_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"

SYSTEM = "erp"
# The ERP's plants for the hub's locations; item numbers are the hub's SKU codes.
PLANTS = {"WH01": "1000"}

# spyne logs every Fault with a traceback; a simulated fault is not news.
def sandbox_bindings(skus: Iterable[str] = (), plants: dict[str, str] | None = None,
                     system: str = SYSTEM) -> list[tuple[str, str, str, str]]:
    """(system, kind, external_id, internal_id) rows binding hub locations to ERP plants.
    The ERP keeps the hub's SKU codes as item numbers, so `skus` need no binding."""
    return [(system, "location", plant, loc) for loc, plant in (plants or PLANTS).items()]


def seed_binder(binder: Any, skus: Iterable[str] = (), plants: dict[str, str] | None = None,
                system: str = SYSTEM) -> Any:
    for row in sandbox_bindings(skus, plants, system):
        binder.bind(*row)
    return binder


for _name in ("spyne.application", "spyne.application.server", "spyne.application.client"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


# -- the WSDL's types ---------------------------------------------------------------------

class Product(ComplexModel):
    __namespace__ = NS
    ItemNo = Unicode(min_occurs=1)
    Barcode = Unicode
    Description = Unicode
    BaseUnit = Unicode
    UnitPrice = XsDecimal          # yuan, two decimals
    Currency = Unicode
    ShelfNo = Unicode              # where the stores shelve it (an item card's "Shelf No."); may be empty
    GrossWeight = XsDecimal        # kg, three decimals; absent when the material has none


class StockLine(ComplexModel):
    __namespace__ = NS
    Plant = Unicode(min_occurs=1)
    ItemNo = Unicode(min_occurs=1)
    Quantity = Integer
    AsOf = DateTime


class SalesOrderLine(ComplexModel):
    __namespace__ = NS
    ItemNo = Unicode(min_occurs=1)
    Quantity = Integer(min_occurs=1)
    UnitPrice = XsDecimal


class SalesOrder(ComplexModel):
    __namespace__ = NS
    ExternalRef = Unicode(min_occurs=1)
    Channel = Unicode
    Plant = Unicode(min_occurs=1)
    OrderDate = DateTime
    CustomerRef = Unicode
    CustomerName = Unicode
    TotalAmount = XsDecimal
    Lines = Array(SalesOrderLine)


class SalesOrderResult(ComplexModel):
    __namespace__ = NS
    DocumentNo = Unicode
    ExternalRef = Unicode
    Created = Unicode              # "X" when this call created it, "" when it already existed (SAP style)


def _sim(ctx: Any) -> ErpSimulator:
    return ctx.app.simulator


class ErpService(ServiceBase):
    @rpc(_returns=Array(Product), _body_style="wrapped")
    def GetProductMaster(ctx):  # the WSDL's own operation names
        return _sim(ctx).op_product_master(ctx)

    @rpc(Array(Unicode), _returns=Array(StockLine), _body_style="wrapped")
    def GetWarehouseStock(ctx, Plants):
        return _sim(ctx).op_warehouse_stock(ctx, Plants)

    @rpc(SalesOrder, _returns=SalesOrderResult, _body_style="wrapped")
    def CreateSalesOrder(ctx, Order):
        return _sim(ctx).op_create_sales_order(ctx, Order)


# -- state, knobs, record -------------------------------------------------------------------

@dataclass
class ErpItem:
    item_no: str
    barcode: str
    description: str
    unit: str
    price_yuan: Decimal
    shelf: str | None = None
    weight_kg: Decimal | None = None   # gross weight per unit; None: not maintained


DEFAULT_CATALOGUE = (        # the hub's demo catalogue, as the ERP keeps it (prices in yuan)
    ErpItem("TEA-001", "6901234567001", "Longjing green tea 250g", "BOX", Decimal("128.00"), "A-03", Decimal("0.320")),
    ErpItem("CUP-002", "6901234567002", "Celadon tea cup", "EA", Decimal("45.00"), "B-12", Decimal("0.180")),
    ErpItem("POT-003", "6901234567003", "Yixing clay teapot", "EA", Decimal("360.00"), None, Decimal("0.650")),
    ErpItem("SET-004", "6901234567004", "Travel tea set", "SET", Decimal("199.00"), None, Decimal("1.200")),
)


@dataclass
class ErpFaults:
    """Knobs. Counters count down one per SOAP call; `http_error_next` fails at the HTTP front."""

    fault_next: int = 0                 # a SOAP Fault (code Server) on the next N calls
    busy_next: int = 0                  # a "system busy" SOAP Fault (code Server.Busy)
    http_error_next: int = 0            # HTTP 503 from the front proxy, no SOAP at all
    latency_s: float = 0.0
    fault_code: str = "Server"
    fault_string: str = "RFC_ERROR_SYSTEM_FAILURE: posting period closed"
    only_operations: tuple[str, ...] = ()   # restrict SOAP faults to these operations (empty = all)


@dataclass
class ErpCall:
    operation: str
    user: str | None
    at: float
    outcome: str = "ok"                 # ok | fault:<code>


@dataclass
class ErpSimulator:
    """A SOAP ERP on loopback. `start()` serves it; `wsdl_url` is what a connector reads."""

    host: str = "127.0.0.1"
    port: int = 0
    username: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    catalogue: list[ErpItem] = field(default_factory=lambda: list(DEFAULT_CATALOGUE))
    faults: ErpFaults = field(default_factory=ErpFaults)
    calls: list[ErpCall] = field(default_factory=list)
    received_orders: list[dict[str, Any]] = field(default_factory=list)
    name: str = "erp"

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._stock: dict[tuple[str, str], tuple[int, datetime]] = {}
        self._documents: dict[str, str] = {}        # ExternalRef -> DocumentNo
        self._next_doc = 4500000001
        self._server: Any = None
        for i, item in enumerate(self.catalogue):
            self.set_stock("1000", item.item_no, 100 + 10 * i, datetime(2024, 5, 1, 6, 0, tzinfo=CST))

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> ErpSimulator:
        """For the sandbox runner; the ERP never calls back, so `callback_base` is unused."""
        return cls(port=port, username=env.get("HUB_ERP_USER", DEFAULT_USER),
                   password=env.get("HUB_ERP_PASSWORD", DEFAULT_PASSWORD))

    # -- test / demo controls --------------------------------------------------------
    def set_stock(self, plant: str, item_no: str, qty: int, as_of: datetime | None = None) -> None:
        with self._lock:
            self._stock[(plant, item_no)] = (qty, as_of or datetime.now(CST).replace(microsecond=0))

    def document_for(self, external_ref: str) -> str | None:
        with self._lock:
            return self._documents.get(external_ref)

    def calls_to(self, operation: str) -> list[ErpCall]:
        with self._lock:
            return [c for c in self.calls if c.operation == operation]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.received_orders.clear()
            self.faults = ErpFaults()

    # -- the operations --------------------------------------------------------------
    def _enter(self, ctx: Any, operation: str) -> None:
        """Authenticate, record, and apply the fault knobs, in that order."""
        user = self._authenticate(ctx)
        call = ErpCall(operation, user, time.time())
        if self.faults.latency_s:
            time.sleep(self.faults.latency_s)
        with self._lock:
            self.calls.append(call)
            f = self.faults
            applies = not f.only_operations or operation in f.only_operations
            if user is None:
                call.outcome = "fault:Client.Authentication"
                raise Fault("Client.Authentication", "invalid username or password")
            if applies and f.busy_next > 0:
                f.busy_next -= 1
                call.outcome = "fault:Server.Busy"
                raise Fault("Server.Busy", "system busy, please try again later")
            if applies and f.fault_next > 0:
                f.fault_next -= 1
                call.outcome = f"fault:{f.fault_code}"
                raise Fault(f.fault_code, f.fault_string)

    def _authenticate(self, ctx: Any) -> str | None:
        """Check the WS-Security UsernameToken; the user name when it verifies, else None."""
        for header in ctx.in_header_doc or []:
            token = header.find(f"{_WSSE}UsernameToken") if header.tag == f"{_WSSE}Security" else None
            if token is None:
                continue
            user = token.findtext(f"{_WSSE}Username")
            pw = token.find(f"{_WSSE}Password")
            if user != self.username or pw is None or pw.text is None:
                return None
            if pw.get("Type") == _DIGEST:
                nonce = base64.b64decode(token.findtext(f"{_WSSE}Nonce") or "")
                created = (token.findtext(f"{_WSU}Created") or "").encode()
                expected = base64.b64encode(
                    hashlib.sha1(nonce + created + self.password.encode()).digest()).decode()
                return user if pw.text == expected else None
            return user if pw.text == self.password else None
        return None

    def op_product_master(self, ctx: Any) -> list[Product]:
        self._enter(ctx, "GetProductMaster")
        return [Product(ItemNo=i.item_no, Barcode=i.barcode, Description=i.description,
                        BaseUnit=i.unit, UnitPrice=i.price_yuan, Currency="CNY", ShelfNo=i.shelf,
                        GrossWeight=i.weight_kg)
                for i in self.catalogue]

    def op_warehouse_stock(self, ctx: Any, plants: list[str] | None) -> list[StockLine]:
        self._enter(ctx, "GetWarehouseStock")
        with self._lock:
            known = {p for p, _ in self._stock}
            for plant in plants or []:
                if plant not in known:
                    raise Fault("Client.UnknownPlant", f"plant {plant} does not exist")
            return [StockLine(Plant=p, ItemNo=i, Quantity=q, AsOf=at)
                    for (p, i), (q, at) in sorted(self._stock.items()) if not plants or p in plants]

    def op_create_sales_order(self, ctx: Any, order: SalesOrder | None) -> SalesOrderResult:
        self._enter(ctx, "CreateSalesOrder")
        if order is None or not order.ExternalRef:
            raise Fault("Client.Validation", "Order.ExternalRef is required")
        record = _as_dict(order)
        with self._lock:
            self.received_orders.append(record)
            existing = self._documents.get(order.ExternalRef)
            if existing:
                return SalesOrderResult(DocumentNo=existing, ExternalRef=order.ExternalRef, Created="")
            if order.Plant not in {p for p, _ in self._stock}:
                raise Fault("Client.UnknownPlant", f"plant {order.Plant} does not exist")
            items = {i.item_no for i in self.catalogue}
            lines = list(order.Lines or [])
            if not lines:
                raise Fault("Client.Validation", "a sales order needs at least one line")
            for line in lines:
                if line.ItemNo not in items:
                    raise Fault("Client.UnknownMaterial", f"material {line.ItemNo} does not exist")
                if not line.Quantity or line.Quantity <= 0:
                    raise Fault("Client.Validation", f"quantity of {line.ItemNo} must be positive")
            doc = str(self._next_doc)
            self._next_doc += 1
            self._documents[order.ExternalRef] = doc
            return SalesOrderResult(DocumentNo=doc, ExternalRef=order.ExternalRef, Created="X")

    # -- lifecycle -------------------------------------------------------------------
    def _wsgi(self) -> Any:
        app = Application([ErpService], tns=NS, name="ErpSalesService",
                          in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
        app.simulator = self
        soap = WsgiApplication(app)

        def front(environ: dict, start_response: Any) -> Any:
            # The HTTP front: a wrong path is a 404, a tripped knob a 503 from the "proxy".
            if environ.get("PATH_INFO", "").rstrip("/") != "/erp":
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found"]
            with self._lock:
                if self.faults.http_error_next > 0 and environ.get("REQUEST_METHOD") == "POST":
                    self.faults.http_error_next -= 1
                    start_response("503 Service Unavailable", [("Content-Type", "text/html")])
                    return [b"<html><body>503 Service Unavailable</body></html>"]
            return soap(environ, start_response)

        return front

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def wsdl_url(self) -> str:
        return f"{self.base_url}/erp?wsdl"

    def start(self) -> ErpSimulator:
        self._server = make_server(self.host, self.port, self._wsgi(), threaded=True,
                                   request_handler=_QuietHandler)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, name="sim-erp", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ErpSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # keep test output quiet
        pass


def _as_dict(order: SalesOrder) -> dict[str, Any]:
    return {
        "ExternalRef": order.ExternalRef, "Channel": order.Channel, "Plant": order.Plant,
        "OrderDate": order.OrderDate, "CustomerRef": order.CustomerRef,
        "CustomerName": order.CustomerName, "TotalAmount": order.TotalAmount,
        "Lines": [{"ItemNo": ln.ItemNo, "Quantity": ln.Quantity, "UnitPrice": ln.UnitPrice}
                  for ln in (order.Lines or [])],
    }


# The ERP's plants for the sandbox: the warehouse it already knows, and one per store for the sales
# orders the stores' pickups and deliveries become.
SANDBOX_PLANTS = {**PLANTS, "S001": "1101", "S002": "1102", "S003": "1103"}


def _store_plants(sim: ErpSimulator, skus: list[str]) -> None:
    """The store plants known with zero lines (the ERP refuses a sales order for a plant it holds no
    stock line for); the hub pulls warehouse plants only, a store's on-hand comes from its POS."""
    for plant in set(SANDBOX_PLANTS.values()) - set(PLANTS.values()):
        for sku in skus:
            sim.set_stock(plant, sku, 0)


SANDBOX = SandboxSystem(
    "erp", ErpSimulator, 8701, "HUB_ERP_WSDL", "/erp?wsdl",
    credentials={"HUB_ERP_USER": "hub", "HUB_ERP_PASSWORD": "sandbox-erp-password",
                 "HUB_ERP_KEY": "sandbox-erp-feed-key-0001"},
    bind=lambda binder, skus: seed_binder(binder, skus, plants=SANDBOX_PLANTS), prepare=_store_plants)

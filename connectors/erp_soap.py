"""The ERP over SOAP (zeep): pull the product master and warehouse stock, push sales orders.

Operation, argument and element names come from the mapping (mappings/erp_soap.yaml by
default, `mapping:` in config.yaml to pick another), so another ERP's WSDL is a new
mapping file, not a new connector. A SOAP Fault becomes a PermanentError (a TransientError
for the fault codes the mapping lists as transient); a transport failure a TransientError.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Self

import requests
import zeep
import zeep.exceptions
from zeep.helpers import serialize_object
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from hub.config import SystemConfig
from hub.domain.model import OrderSnapshot, Sku, StockCount
from mappings.engine import Mapping, MappingConfigError, load_mapping

from .base import Binder, MappingError, PermanentError, RetryPolicy, TransientError
from .binding import SystemBinder

log = logging.getLogger(__name__)
# zeep logs whole envelopes at DEBUG, WS-Security password included: keep that logger above DEBUG.
logging.getLogger("zeep.transports").setLevel(logging.INFO)

LOCATION = "location"          # binder kind of a warehouse or store code


class ErpSoapConnector:
    def __init__(self, name: str, wsdl: str, username: str, password: str, binder: Binder,
                 retry: RetryPolicy, mapping: Mapping | None = None, *, timeout: float = 10.0,
                 password_digest: bool = False):
        self.name, self.wsdl = name, wsdl
        self.binder = SystemBinder(binder, name)
        self.retry = retry
        self.mapping = mapping or load_mapping("erp_soap")
        self._wsse = UsernameToken(username, password, use_digest=password_digest)
        self._timeout = timeout
        self._client: zeep.Client | None = None

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        return cls(name, system.get("wsdl"), system.get("username"), system.get("password"),
                   binder, retry, load_mapping(system.get("mapping", "erp_soap")),
                   timeout=float(system.get("timeout", 10.0)),
                   password_digest=bool(system.get("password_digest", False)))

    # -- the three jobs ------------------------------------------------------------------
    def fetch_products(self) -> list[Sku]:
        """The ERP's product master as canonical SKUs (prices in fen)."""
        result = self.retry.call(self._invoke, self.mapping.operation("product_master"), {})
        skus = []
        for item in self._items(result, "product_master_items"):
            d = self.mapping.inbound("product", item, self.binder)
            skus.append(Sku(code=d["code"], name=d["name"], barcode=d["barcode"],
                            unit=d["unit"] or "pcs", price_fen=d["price_fen"]))
        return skus

    def fetch_warehouse_stock(self, warehouse_ids: list[str] | None = None) -> list[StockCount]:
        """On-hand per (warehouse, SKU) as counts, each as of the ERP's own posting time."""
        args: dict[str, Any] = {}
        if warehouse_ids:
            plants = []
            for wid in warehouse_ids:
                plant = self.binder.to_external(self.name, LOCATION, wid)
                if plant is None:
                    raise MappingError(self.mapping.system, "location_id", wid,
                                       f"unmapped location (no binding for {self.name})")
                plants.append(plant)
            args[self.mapping.operation("warehouse_stock_filter")] = plants
        result = self.retry.call(self._invoke, self.mapping.operation("warehouse_stock"), args)
        counts = []
        for line in self._items(result, "warehouse_stock_items"):
            d = self.mapping.inbound("stock_line", line, self.binder)
            at = d["counted_at"]
            if not isinstance(at, datetime) or at.tzinfo is None:
                raise MappingError(self.mapping.system, "AsOf", at, "not a time with a UTC offset")
            counts.append(StockCount(
                source=self.name, external_id=f"{self.name}:{d['location_id']}:{d['sku']}:{at.isoformat()}",
                sku=d["sku"], location_id=d["location_id"], on_hand=d["on_hand"], counted_at=at))
        return counts

    def push_sales_order(self, order: OrderSnapshot) -> str:
        """Create the sales order; the ERP's document number. Safe to repeat: the ERP dedupes
        on the hub's order id, so a retry after a lost answer gets the same number back."""
        args = self.mapping.outbound("sales_order", order, self.binder)
        result = self.retry.call(self._invoke, self.mapping.operation("create_sales_order"), args)
        if not isinstance(result, dict):
            result = {"DocumentNo": result}   # an operation that answers the bare number
        doc = self.mapping.inbound("sales_order_result", result)["document_no"]
        log.info("%s: order %s is ERP document %s", self.name, order.order_id, doc)
        return doc

    # -- SOAP ------------------------------------------------------------------------------
    def _soap(self) -> zeep.Client:
        if self._client is None:
            session = requests.Session()
            transport = _Transport(session=session, timeout=self._timeout, operation_timeout=self._timeout)
            self._client = zeep.Client(self.wsdl, wsse=self._wsse, transport=transport)
        return self._client

    def _invoke(self, operation: str, args: dict[str, Any]) -> Any:
        """One SOAP call, every failure classified; the answer as plain dicts and lists."""
        try:
            client = self._soap()
            method = client.service[operation]
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(self.name, f"cannot read the WSDL at {self.wsdl}: {exc}") from exc
        except zeep.exceptions.TransportError as exc:
            raise self._http_error(exc, "reading the WSDL") from exc
        except AttributeError as exc:
            raise PermanentError(self.name, f"the WSDL has no operation {operation!r}") from exc
        try:
            result = method(**args)
        except zeep.exceptions.Fault as fault:
            raise self._fault_error(operation, fault) from fault
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(self.name, f"{operation}: {type(exc).__name__}: {exc}") from exc
        except zeep.exceptions.TransportError as exc:
            raise self._http_error(exc, operation) from exc
        except (TypeError, ValueError, zeep.exceptions.ValidationError) as exc:
            # Our arguments do not fit the WSDL: a mapping problem, retrying will not help.
            raise PermanentError(self.name, f"{operation}: arguments do not fit the WSDL "
                                            f"(check mapping {self.mapping.system}): {exc}") from exc
        except zeep.exceptions.Error as exc:
            raise PermanentError(self.name, f"{operation}: unreadable answer: {exc}") from exc
        return serialize_object(result, target_cls=dict)

    def _fault_error(self, operation: str, fault: zeep.exceptions.Fault) -> Exception:
        code = (fault.code or "").split(":", 1)[-1]      # drop the soap-env prefix
        message = f"SOAP Fault from {operation}: {code}: {fault.message}"
        try:
            kind = self.mapping.value("fault_kind", code)
        except (MappingError, MappingConfigError):
            kind = "permanent"
        if kind == "transient":
            return TransientError(self.name, message)
        return PermanentError(self.name, message)

    def _http_error(self, exc: zeep.exceptions.TransportError, what: str) -> Exception:
        status = exc.status_code
        message = f"{what}: HTTP {status}"
        if status == 429 or status >= 500:
            return TransientError(self.name, message, status=status)
        return PermanentError(self.name, message, status=status)

    def _items(self, result: Any, where_key: str) -> list[dict[str, Any]]:
        """The list of records in an answer: the answer itself, or at the path the mapping names."""
        try:
            path = self.mapping.operation(where_key)
        except MappingConfigError:
            path = ""
        node = result
        for part in filter(None, path.split(".")):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return []
        if isinstance(node, dict):
            node = [node]             # a single record where the schema allows many
        if not isinstance(node, list):
            raise MappingError(self.mapping.system, path or "(answer)", type(node).__name__,
                               "expected a list of records")
        return node


class _Transport(Transport):
    """An HTTP error that is not a SOAP answer (a proxy's 503 page) is a transport error;
    zeep would otherwise read well-formed HTML as an "Unknown fault"."""

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        response = super().post(address, message, headers)
        if response.status_code >= 400 and "xml" not in response.headers.get("Content-Type", ""):
            raise zeep.exceptions.TransportError(f"HTTP {response.status_code}",
                                                 status_code=response.status_code, content=response.content)
        return response

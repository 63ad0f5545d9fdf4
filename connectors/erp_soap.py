"""The ERP over SOAP (zeep): pull the product master and warehouse stock, push sales orders.

Which operation does each job, with which arguments, paging and fan-out, from which WSDL,
and how errors inside an answer read, is the mapping's `calls:` (mappings/calls.py); the
mapping file is picked by `mapping:` in config.yaml (erp_soap, erp_nav, erp_sap), so another
ERP is a new mapping file, not a new connector. config.yaml gives the site: `wsdl` (the WSDL,
or the base a mapping's relative WSDL paths hang from), `endpoint` (where calls go when the
WSDL names another host), `services` (a WSDL/endpoint per call), `auth` (wsse | basic | ntlm).

Failures are classified: a SOAP Fault or an error row in the answer's message table is a
PermanentError unless the mapping lists its code as transient (or `done`: "already there",
which a create counts as applied); a transport failure, a 5xx and a 429 are TransientErrors;
a refused login is a PermanentError, at the WSDL as at a call. A create whose answer may have
been lost after the ERP saved it (a read timeout, a 504) is resent only when the mapping can
look it up first or says the ERP refuses repeats; otherwise it is OutcomeUnknown, for an operator.

Every job is optional: an ERP that answers only sales orders has no product_master (`does`).
"""
from __future__ import annotations

import importlib.util
import itertools
import logging
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import zeep
import zeep.exceptions
from lxml.etree import XMLSyntaxError
from zeep.helpers import serialize_object
from zeep.proxy import ServiceProxy
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from hub.config import SystemConfig
from hub.domain.model import ErpReturn, OrderSnapshot, Sku, StockCount
from hub.ports import Erp
from mappings.calls import CallSpec, render
from mappings.engine import Mapping, MappingConfigError, load_mapping

from .base import (
    Binder,
    ConnectorError,
    MappingError,
    OutcomeUnknown,
    PermanentError,
    RetryPolicy,
    TransientError,
    http_session,
)
from .binding import SystemBinder

log = logging.getLogger(__name__)
# zeep logs whole envelopes at DEBUG, WS-Security password included: keep that logger above DEBUG.
logging.getLogger("zeep.transports").setLevel(logging.INFO)

LOCATION = "location"          # binder kind of a warehouse or store code
AUTH_KINDS = ("wsse", "basic", "ntlm")
JOBS = ("product_master", "warehouse_stock", "create_sales_order",   # each optional: an ERP does what it maps
        "create_return_order")
MAX_PAGES = 10_000             # a system that ignores the page argument must not loop forever
NOT_SENT_STATUSES = (429, 503)  # the server says it did not take the request: safe to send again


def _shelf(value: Any) -> str | None:
    """The master's shelf hint, if it has one that fits the hub's column (a flavour that maps none has none); a
    longer one is dropped rather than the whole product pull refused."""
    return value if isinstance(value, str) and 0 < len(value) <= 32 else None


class AlreadyDone(PermanentError):
    """The ERP refused a call as a repeat of one it holds (a fault or message mapped `done`)."""


class ErpSoapConnector:
    kind = "erp_soap"
    role = "erp"

    def __init__(self, name: str, wsdl: str, username: str, password: str, binder: Binder,
                 retry: RetryPolicy, mapping: Mapping | None = None, *, timeout: float = 10.0,
                 password_digest: bool = False, auth: str = "wsse", endpoint: str | None = None,
                 services: dict[str, dict[str, str]] | None = None,
                 bindings: dict[str, dict[str, str]] | None = None):
        if auth not in AUTH_KINDS:
            raise ValueError(f"auth must be one of {AUTH_KINDS}, not {auth!r}")
        self.name, self.wsdl, self.endpoint, self.auth = name, wsdl, endpoint or None, auth
        self.binder = SystemBinder(binder, name, bindings)
        self.retry = retry
        self.mapping = mapping or load_mapping("erp_soap")
        self.services = services or {}
        self._wsse = UsernameToken(username, password, use_digest=password_digest) if auth == "wsse" else None
        self._session = _session(wsdl, auth, username, password)
        self._timeout = timeout
        self._clients: dict[str, zeep.Client] = {}          # WSDL URL -> client
        self._proxies: dict[str, ServiceProxy] = {}         # call name -> bound service

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        return cls(name, system.get("wsdl"), system.get("username"), system.get("password"),
                   binder, retry, load_mapping(mapping_name(system.get("mapping", "erp_soap"))),
                   timeout=float(system.get("timeout", 10.0)),
                   password_digest=bool(system.get("password_digest", False)),
                   auth=system.get("auth", "wsse"), endpoint=system.get("endpoint"),
                   services=system.get("services"), bindings=system.get("bindings"))

    @classmethod
    def check_config(cls, system: SystemConfig) -> list[tuple[str, str]]:
        """Problems with this system's block (key, message), for `hub check-config`."""
        problems: list[tuple[str, str]] = []
        auth = system.get("auth", "wsse")
        if auth not in AUTH_KINDS:
            problems.append(("auth", f"must be one of {', '.join(AUTH_KINDS)}, not {auth!r}"))
        elif auth == "ntlm" and importlib.util.find_spec("requests_ntlm") is None:
            problems.append(("auth", "ntlm needs the requests-ntlm package (make install)"))
        wsdl = system.get("wsdl")
        if not wsdl:
            problems.append(("wsdl", "required: the ERP's WSDL URL, or the base URL of its per-call WSDLs"))
        try:
            mapping = load_mapping(mapping_name(system.get("mapping", "erp_soap")))
        except MappingConfigError as exc:
            return [*problems, ("mapping", str(exc))]
        if not any(mapping.has_call(job) for job in JOBS):
            problems.append(("mapping", f"{mapping.source} names none of calls.{', calls.'.join(JOBS)}"))
        if system.get("push_orders") and not mapping.has_call("create_sales_order"):
            problems.append(("push_orders", f"{mapping.source} has no calls.create_sales_order to push with"))
        relative = [c for c in JOBS if mapping.has_call(c) and mapping.call(c).wsdl
                    and not urlsplit(mapping.call(c).wsdl).scheme]
        if relative and wsdl and not urlsplit(wsdl).path.endswith("/"):
            problems.append(("wsdl", f"must end in / : {mapping.source} names WSDLs relative to it "
                                     f"({mapping.call(relative[0]).wsdl})"))
        problems.extend(_check_bindings(system.get("bindings")))
        services = system.get("services") or {}
        if not isinstance(services, dict):
            problems.append(("services", "must map a call name to {wsdl, endpoint}"))
            services = {}
        for call, where in services.items():
            if not mapping.has_call(call):
                problems.append((f"services.{call}", f"no call {call!r} in {mapping.source}"))
            elif not isinstance(where, dict) or set(where) - {"wsdl", "endpoint"}:
                problems.append((f"services.{call}", "must be {wsdl: URL, endpoint: URL}"))
        return problems

    # -- the three jobs ------------------------------------------------------------------
    def does(self, job: str) -> bool:
        """Whether the mapping names this job (product_master, warehouse_stock, create_sales_order)."""
        return self.mapping.has_call(job)

    def fetch_products(self) -> list[Sku]:
        """The ERP's product master as canonical SKUs (prices in fen)."""
        skus = []
        for item in self._records(self.mapping.call("product_master"), {}):
            d = self.mapping.inbound("product", item, self.binder)
            skus.append(Sku(code=d["code"], name=d["name"], barcode=d["barcode"], unit=d["unit"] or "pcs",
                            price_fen=d["price_fen"], bin=_shelf(d.get("bin")),
                            weight_g=d.get("weight_g") or None))   # 0: not maintained
        return skus

    def fetch_warehouse_stock(self, warehouse_ids: list[str] | None = None,
                              sku_codes: list[str] | None = None) -> list[StockCount]:
        """On-hand per (warehouse, SKU) as counts, each as of the ERP's own posting time (or, for
        a system that gives none, the time of the call). A call asked per item takes the item
        numbers from the product master, or, for an ERP without one, `sku_codes` (the hub's)."""
        spec = self.mapping.call("warehouse_stock")
        plants = [self._plant(wid) for wid in warehouse_ids or []]
        if "plant" in spec.fan_out and not plants:
            raise PermanentError(self.name, f"{spec.operation} is asked per plant: name the warehouses")
        variables: dict[str, Any] = {"plants": plants or None, "plant": plants}
        if "item" in spec.fan_out:
            # One call per item: the item numbers are the product master's (the hub's SKU codes).
            if self.does("product_master"):
                variables["item"] = [sku.code for sku in self.fetch_products()]
            elif sku_codes is None:
                raise PermanentError(self.name, f"{spec.operation} is asked per item and the ERP has no "
                                                f"product list: name the SKUs to ask for")
            else:
                variables["item"] = list(sku_codes)
        counts = []
        for line in self._records(spec, variables):
            try:
                d = self.mapping.inbound("stock_line", line, self.binder)
                at = d["counted_at"]
                if not isinstance(at, datetime) or at.tzinfo is None:
                    raise MappingError(self.mapping.system, "counted_at", at, "not a time with a UTC offset")
            except MappingError as exc:
                if "unmapped" in str(exc):     # a plant or item with no binding: configuration, kept loud
                    raise
                # One line whose values the hub cannot read (an on-hand of 3e9, a time without offset) is
                # skipped, like a line of an unknown SKU: refusing the whole answer would stop every pull for ever.
                log.warning("%s: warehouse stock line skipped: %s", self.name, exc)
                continue
            counts.append(StockCount(
                source=self.name, external_id=f"{self.name}:{d['location_id']}:{d['sku']}:{at.isoformat()}",
                sku=d["sku"], location_id=d["location_id"], on_hand=d["on_hand"], counted_at=at))
        return counts

    def push_sales_order(self, order: OrderSnapshot) -> str:
        """Create the sales order; the ERP's document number. Safe to repeat: when the mapping
        names a lookup, every attempt first asks the ERP for an order carrying the hub's order
        id, so a retry after a lost answer finds the first order instead of making a second."""
        spec = self.mapping.call("create_sales_order")
        doc = self.retry.call(self._find_or_create, spec, order)
        log.info("%s: order %s is ERP document %s", self.name, order.order_id, doc)
        return doc

    def push_return(self, ret: ErpReturn) -> str | None:
        """A return order / credit memo for a return or refund of a completed order; its document
        number, or None when the mapping has no create_return_order. In the call's templates
        `${order.<field>}` is the return's (return_id, order_id, amount_fen); it is looked up (or
        counted as done) by `return_id`, as a sales order is by its order id."""
        if not self.does("create_return_order"):
            return None
        doc = self.retry.call(self._find_or_create, self.mapping.call("create_return_order"), ret)
        log.info("%s: %s %s of order %s is ERP document %s", self.name, ret.kind, ret.return_id, ret.order_id, doc)
        return doc

    def _find_or_create(self, spec: CallSpec, order: OrderSnapshot | ErpReturn) -> str:
        if spec.lookup:
            found = self._find_order(self.mapping.call(spec.lookup), order)
            if found:
                log.info("%s: order %s already in the ERP as %s", self.name, order.order_id, found)
                return found
        if spec.per_line:
            # Every line, in order; a line the ERP already holds counts as sent, so a retry after
            # a lost answer completes the order instead of stopping at its first line.
            answers = [self._send(spec, self._line_args(spec, order, line, i), order)
                       for i, line in enumerate(order.lines)]
            answer = answers[-1] if answers else None
        else:
            answer = self._send(spec, self._args(spec, {"order": order}, order), order)
        if answer is None:                   # "already there": the ERP's own refusal of a repeat
            found = self._find_order(self.mapping.call(spec.lookup), order) if spec.lookup else None
            return found or _ident(order)    # without a lookup the ERP's copy is known by the hub's id
        if spec.per_line and not spec.result:
            return _ident(order)
        if not isinstance(answer, dict):
            answer = {"DocumentNo": answer}   # an operation that answers the bare number
        return self.mapping.inbound(spec.result or "sales_order_result", answer)["document_no"]

    def _send(self, spec: CallSpec, args: dict[str, Any], order: OrderSnapshot | ErpReturn) -> Any:
        """One create call: its answer, or None when the ERP says it already holds it."""
        try:
            return self._invoke(spec, args)
        except AlreadyDone as exc:
            log.info("%s: order %s: %s already there (%s): counted as applied", self.name, order.order_id,
                     spec.operation, exc)
            return None
        except TransientError as exc:
            if getattr(exc, "maybe_applied", False) and not (spec.lookup or spec.dedupes):
                raise OutcomeUnknown(self.name, f"{spec.operation} for order {order.order_id}: the answer was lost "
                                                f"({exc}); the ERP may have saved it and cannot be asked — check the "
                                                f"ERP before resending") from exc
            raise

    def _line_args(self, spec: CallSpec, order: OrderSnapshot | ErpReturn, line: Any, index: int) -> dict[str, Any]:
        args = render(spec.args, {"order": order, "line": line})
        return _merge(args, self.mapping.outbound_line(spec.entity or "", line, order, index, self.binder))

    def _find_order(self, spec: CallSpec, order: OrderSnapshot | ErpReturn) -> str | None:
        for record in self._records(spec, {"order": order}, retry=False):
            found = self.mapping.inbound(spec.result or "sales_order_result", record)
            # Trust the ERP's filter only as far as the record says which order it is.
            key = "return_id" if isinstance(order, ErpReturn) else "order_id"
            if found.get(key) not in (None, _ident(order)):
                continue
            return found["document_no"]
        return None

    # -- calls: arguments, fan-out, paging -----------------------------------------------
    def _records(self, spec: CallSpec, variables: dict[str, Any], *, retry: bool = True) -> list[dict[str, Any]]:
        """Every record the call yields, over its fan-out and its pages. Each record carries
        `_call` (the fan-out values and the time of the call) for the mapping to read."""
        ask = (lambda s, a: self.retry.call(self._invoke, s, a)) if retry else self._invoke
        out: list[dict[str, Any]] = []
        fans = [[(var, value) for value in variables.get(var) or []] for var in spec.fan_out]
        for combo in itertools.product(*fans):
            given = {**variables, **dict(combo)}
            page, bookmark = (spec.paging.first_page if spec.paging else 1), None
            for _ in range(MAX_PAGES):
                paged = {**given, "page": page, "bookmark": bookmark,
                         "page_size": spec.paging.size if spec.paging else None}
                answer = ask(spec, self._args(spec, paged, given.get("order")))
                records = [self._annotate(r, dict(combo)) for r in self._items(answer, spec.items)]
                out.extend(records)
                if spec.paging is None or len(records) < spec.paging.size:
                    break
                if spec.paging.bookmark:
                    nxt = records[-1].get(spec.paging.bookmark)
                    if not nxt or nxt == bookmark:
                        raise PermanentError(self.name, f"{spec.operation}: no new bookmark in "
                                                        f"{spec.paging.bookmark!r} to read the next page")
                    bookmark = nxt
                page += 1
            else:
                raise PermanentError(self.name, f"{spec.operation}: more than {MAX_PAGES} pages")
        return out

    def _args(self, spec: CallSpec, variables: dict[str, Any],
              order: OrderSnapshot | ErpReturn | None) -> dict[str, Any]:
        args = render(spec.args, variables)
        if spec.entity:
            args = _merge(args, self.mapping.outbound(spec.entity, order, self.binder))
        return args

    @staticmethod
    def _annotate(record: Any, fan: dict[str, Any]) -> dict[str, Any]:
        row = dict(record) if isinstance(record, dict) else {"value": record}
        row["_call"] = {**fan, "at": datetime.now(UTC).replace(microsecond=0)}
        return row

    def _plant(self, location_id: str) -> str:
        plant = self.binder.to_external(self.name, LOCATION, location_id)
        if plant is None:
            raise MappingError(self.mapping.system, "location_id", location_id,
                               f"unmapped location (no binding for {self.name})")
        return plant

    # -- SOAP ------------------------------------------------------------------------------
    def _service(self, spec: CallSpec) -> ServiceProxy:
        """The bound service for a call: its WSDL read once, its address from the config."""
        proxy = self._proxies.get(spec.name)
        if proxy is not None:
            return proxy
        override = self.services.get(spec.name) or {}
        wsdl = override.get("wsdl") or (urljoin(self.wsdl, spec.wsdl) if spec.wsdl else self.wsdl)
        client = self._clients.get(wsdl)
        if client is None:
            client = self._read_wsdl(wsdl)
            self._clients[wsdl] = client
        address = override.get("endpoint")
        if not address and self.endpoint:
            address = urljoin(self.endpoint, _drop_query(spec.endpoint or spec.wsdl or ""))
        if not address and spec.endpoint:
            address = urljoin(wsdl, spec.endpoint)
        if address:
            port = next(p for s in client.wsdl.services.values() for p in s.ports.values())
            proxy = client.create_service(str(port.binding.name), address)
        else:
            proxy = client.service
        self._proxies[spec.name] = proxy
        return proxy

    def _read_wsdl(self, wsdl: str) -> zeep.Client:
        try:
            transport = _Transport(wsdl, session=self._session, timeout=self._timeout,
                                   operation_timeout=self._timeout)
            return zeep.Client(wsdl, wsse=self._wsse, transport=transport)
        except ForbiddenImport as exc:
            raise PermanentError(self.name, f"the WSDL at {wsdl} is refused: {exc}") from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(self.name, f"cannot read the WSDL at {wsdl}: {exc}") from exc
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            hint = " (check auth, username and password)" if status in (401, 403) else ""
            cls = TransientError if status == 429 or status >= 500 else PermanentError
            raise cls(self.name, f"cannot read the WSDL at {wsdl}: HTTP {status}{hint}", status=status) from exc
        except zeep.exceptions.TransportError as exc:
            raise self._http_error(exc, f"reading the WSDL at {wsdl}") from exc
        except (XMLSyntaxError, zeep.exceptions.Error) as exc:
            raise PermanentError(self.name, f"the WSDL at {wsdl} does not read: {exc}") from exc

    def _invoke(self, spec: CallSpec, args: dict[str, Any]) -> Any:
        """One SOAP call, every failure classified; the answer as plain dicts and lists."""
        operation = spec.operation
        service = self._service(spec)
        try:
            method = service[operation]
        except AttributeError as exc:
            raise PermanentError(self.name, f"the WSDL has no operation {operation!r}") from exc
        try:
            result = method(**args)
        except zeep.exceptions.Fault as fault:
            raise self._fault_error(operation, fault) from fault
        except (requests.Timeout, requests.ConnectionError) as exc:
            error = TransientError(self.name, f"{operation}: {type(exc).__name__}: {exc}")
            error.maybe_applied = not _never_sent(exc)
            raise error from exc
        except zeep.exceptions.TransportError as exc:
            failed = self._http_error(exc, operation)
            failed.maybe_applied = exc.status_code not in NOT_SENT_STATUSES
            raise failed from exc
        except (TypeError, ValueError, zeep.exceptions.ValidationError) as exc:
            # Our arguments do not fit the WSDL: a mapping problem, retrying will not help.
            raise PermanentError(self.name, f"{operation}: arguments do not fit the WSDL "
                                            f"(check mapping {self.mapping.system}): {exc}") from exc
        except zeep.exceptions.Error as exc:
            raise PermanentError(self.name, f"{operation}: unreadable answer: {exc}") from exc
        answer = serialize_object(result, target_cls=dict)
        self._check_messages(spec, answer)
        return answer

    def _check_messages(self, spec: CallSpec, answer: Any) -> None:
        """An error row in the answer's message table (BAPIRET2) fails the call: transient when
        the mapping lists its message id so (a lock), else permanent (master data, validation)."""
        table = spec.errors
        if table is None:
            return
        errors = [row for row in self._items(answer, table.table)
                  if str(row.get(table.type) or "").strip() in table.fail_on]
        if not errors:
            return
        kinds = [self._message_kind(table.kinds, " ".join(str(row.get(f) or "").strip() for f in table.id))
                 for row in errors]
        text = "; ".join(f"{row.get(table.type)} " + " ".join(str(row.get(f) or "").strip() for f in table.id)
                         + (f": {row.get(table.text)}" if table.text and row.get(table.text) else "")
                         for row in errors)
        message = f"{spec.operation} answered with errors: {text}"
        # A follow-up message ("V4 219 document not changed") says nothing of the cause.
        causes = [k for k in kinds if k != "consequence"] or kinds
        if all(k == "done" for k in causes):
            raise AlreadyDone(self.name, message)
        if all(k == "transient" for k in causes):
            raise TransientError(self.name, message)
        raise PermanentError(self.name, message)

    def _message_kind(self, value_map: str | None, msg_id: str) -> str:
        try:
            return str(self.mapping.value(value_map, msg_id)) if value_map else "permanent"
        except MappingError:
            return "permanent"

    def _fault_error(self, operation: str, fault: zeep.exceptions.Fault) -> ConnectorError:
        code = (fault.code or "").split(":", 1)[-1]      # drop the soap-env prefix
        message = f"SOAP Fault from {operation}: {code}: {fault.message}"
        try:
            kind = self.mapping.value("fault_kind", code)
        except (MappingError, MappingConfigError):
            kind = "permanent"
        if kind == "transient":
            return TransientError(self.name, message)
        if kind == "done":
            return AlreadyDone(self.name, message)
        return PermanentError(self.name, message)

    def _http_error(self, exc: zeep.exceptions.TransportError, what: str) -> ConnectorError:
        status = exc.status_code
        message = f"{what}: HTTP {status}"
        if status in (401, 403):
            message += " (check auth, username and password)"
        if status == 429 or status >= 500:
            return TransientError(self.name, message, status=status)
        return PermanentError(self.name, message, status=status)

    def _items(self, result: Any, path: str | None) -> list[Any]:
        """The list of records in an answer: the answer itself, or at the path the mapping names."""
        node = result
        for part in filter(None, (path or "").split(".")):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return []
        if not isinstance(node, list):
            node = [node]             # a single record (or a bare value) where the schema allows many
        return node


def _check_bindings(raw: Any) -> list[tuple[str, str]]:
    """`bindings: {location: {WH01: "1000"}}`: per kind, the hub's id -> the ERP's code, one hub id per code."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [("bindings", "must map a kind (location) to {hub id: the ERP's code}")]
    problems = []
    for kind, ids in raw.items():
        if not isinstance(ids, dict) or not ids:
            problems.append((f"bindings.{kind}", "must map the hub's id to the ERP's code, e.g. {WH01: \"1000\"}"))
            continue
        seen: dict[str, str] = {}
        for hub_id, code in ids.items():
            if not isinstance(code, str | int) or isinstance(code, bool) or not str(code).strip():
                problems.append((f"bindings.{kind}.{hub_id}", "must be the ERP's code as text"))
            elif str(code) in seen:
                problems.append((f"bindings.{kind}.{hub_id}", f"code {code!r} is already bound to {seen[str(code)]}"))
            else:
                seen[str(code)] = str(hub_id)
    return problems


def mapping_name(value: str) -> str:
    """`erp_nav.yaml` or `erp_nav`: the mapping's name."""
    return str(value).removesuffix(".yaml")


def _session(wsdl: str, auth: str, username: str, password: str) -> requests.Session:
    """The HTTP session for the WSDL download and every call, logged in as the ERP wants."""
    session = http_session(wsdl)
    if auth == "basic":
        session.auth = requests.auth.HTTPBasicAuth(username, password)
    elif auth == "ntlm":
        from requests_ntlm import HttpNtlmAuth  # only a NAV on Windows login needs it

        session.auth = HttpNtlmAuth(username, password)
    return session


def _ident(subject: OrderSnapshot | ErpReturn) -> str:
    """The hub's id the ERP knows a document by: the return's for a return, else the order's."""
    return subject.return_id if isinstance(subject, ErpReturn) else subject.order_id


def _never_sent(exc: requests.RequestException) -> bool:
    """A connection that was never made carried no request: the ERP cannot have saved anything."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text or "NameResolutionError" in text


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _drop_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class ForbiddenImport(zeep.exceptions.Error):
    """A WSDL or schema imports a document from another host than the WSDL's own."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class _Transport(Transport):
    """An HTTP error that is not a SOAP answer (a proxy's 503 page, a 401 from the login) is a
    transport error; zeep would otherwise read well-formed HTML as an "Unknown fault".

    Documents (the WSDL, its wsdl:import and xsd:import/include) are read only from the WSDL's
    own scheme, host and port: zeep follows any URL, so a hostile or compromised ERP WSDL could
    make the hub fetch internal addresses or local files."""

    def __init__(self, wsdl: str, **kwargs: Any):
        super().__init__(**kwargs)
        self._origin = _origin(wsdl)

    def load(self, url: str) -> bytes:
        if _origin(url) != self._origin:
            raise ForbiddenImport(f"it imports {url}, which is not on the WSDL's own host "
                                  f"({self._origin[0]}://{self._origin[1]}:{self._origin[2]})")
        return super().load(url)

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        response = super().post(address, message, headers)
        if response.status_code >= 400 and "xml" not in response.headers.get("Content-Type", ""):
            raise zeep.exceptions.TransportError(f"HTTP {response.status_code}",
                                                 status_code=response.status_code, content=response.content)
        return response


# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[Erp] = ErpSoapConnector

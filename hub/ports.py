"""What the core asks of the outside world: one Protocol per kind of external system, the
errors the core understands, and the registry that hands flows the connector for a role.

Connectors (`connectors/`) implement these ports; the core never imports them. Which system
plays which role comes from config.yaml: each `systems.<name>.kind` names a connector kind,
and `ROLE_OF_KIND` says which port that kind implements.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from hub.config import HubConfig, LocationConfig, SystemConfig
from hub.domain.flash_sale import GateState, SaleTerms, Verdict
from hub.domain.model import (
    Booking,
    Buyer,
    CourierState,
    DeliveryQuote,
    OrderSnapshot,
    PaymentNotice,
    PlaceOrder,
    RefundAnswer,
    RefundRequest,
    Sku,
    StockCount,
    StockDelta,
    TrackingEvent,
)

# -- errors a connector raises and the core must tell apart -------------------------------


class ConnectorError(Exception):
    """A call to an external system failed. `system` names it."""

    def __init__(self, system: str, message: str, *, status: int | None = None):
        self.system, self.status = system, status
        super().__init__(f"{system}: {message}")


class TransientError(ConnectorError):
    """Worth retrying: timeout, connection error, 5xx, rate limit. `retry_after` in seconds if given.
    `maybe_applied`: the request may have reached the system and taken effect (its answer was lost)."""

    maybe_applied = False

    def __init__(self, system: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(system, message, status=status)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """Not worth retrying: the system refused the request (validation error, other 4xx, SOAP fault)."""


class OutcomeUnknown(PermanentError):
    """A create may or may not have been saved (its answer was lost) and the system can neither be
    asked nor safely sent it again: parked at once for an operator, never re-sent blindly."""


class SignatureError(ConnectorError):
    """What a system sent us does not verify: bad or missing signature, stale timestamp, replay."""


class MappingError(ConnectorError):
    """A payload does not map: unknown status code, missing required field, unmapped SKU."""

    def __init__(self, system: str, field: str, value: Any, message: str):
        self.field, self.value = field, value
        super().__init__(system, f"{message} (field {field!r}, value {value!r})")


class GateUnavailable(Exception):
    """The flash-sale gate's store (Redis) cannot be reached. It is our own infrastructure, like the database:
    an API answer is 503 with Retry-After, a consumer waits it out and never parks (`storage/outage.py`)."""


class Binder(Protocol):
    """External id <-> canonical id, per system and entity kind (OCA's binder)."""

    def to_internal(self, system: str, kind: str, external_id: str) -> str | None: ...

    def to_external(self, system: str, kind: str, internal_id: str) -> str | None: ...

    def bind(self, system: str, kind: str, external_id: str, internal_id: str) -> None: ...


# -- the ports: one per kind of external system ---------------------------------------------


@runtime_checkable
class ChannelStockPublisher(Protocol):
    """A sales channel that shows per-store stock and pushes its orders (the mini-program shop)."""

    name: str

    def update_store_stock(self, sku: str, store_id: str, available: int) -> None: ...

    def get_store_stock(self, sku: str, store_id: str) -> int: ...

    def parse_push(self, query: Mapping[str, str], body: bytes) -> dict[str, Any]: ...

    def get_order(self, external_order_id: str) -> PlaceOrder: ...


@runtime_checkable
class PointOfSale(Protocol):
    """A store's till: pickup orders appear there and follow the hub's state."""

    name: str
    binder: Binder

    def push_pickup_order(self, order: OrderSnapshot) -> str: ...

    def update_pickup_state(self, order: OrderSnapshot, state: str) -> None: ...

    def parse_inventory_changes(self, payload: Any, store_id: str) -> list[StockDelta | StockCount]: ...


@runtime_checkable
class LocalCourier(Protocol):
    """Same-city riders: quote, book, cancel, query; status reports come back as callbacks.

    A callback is a claim (some couriers sign it with public fields only); `query` is the courier's
    own word on the order now. `query` and `cancel` raise TransientError when the courier cannot be
    reached (the consumer retries, then parks) and PermanentError when it refuses (a cancel while the
    rider is delivering)."""

    name: str

    def quote(self, order: OrderSnapshot, store: LocationConfig, callback_url: str) -> DeliveryQuote: ...

    def book(self, quote: DeliveryQuote) -> Booking: ...

    def cancel(self, order_id: str, reason: str) -> None: ...

    def query(self, order_id: str) -> CourierState | None:
        """The delivery of the hub's order `order_id` as the courier holds it; None if it holds none."""
        ...

    def parse_callback(self, body: bytes) -> TrackingEvent: ...

    def callback_reply(self) -> dict[str, Any]: ...


@runtime_checkable
class ExpressCourier(Protocol):
    """Parcel carriers: waybills from a warehouse, tracking pushes."""

    name: str

    def create_waybill(self, order: OrderSnapshot, origin: LocationConfig) -> Booking: ...

    def subscribe_tracking(self, waybill_no: str, callback_url: str, phone: str = "") -> None: ...

    def parse_tracking_push(self, form: Mapping[str, str]) -> list[TrackingEvent]: ...

    def push_reply(self, accepted: bool = True) -> dict[str, Any]: ...

    def company_code(self) -> str:
        """The hub's name for the courier company (`sf`); each platform maps it to its own code."""
        ...


@runtime_checkable
class PaymentPlatform(Protocol):
    """Where buyers pay: signed payment and refund notifications in, refunds and shipping info out."""

    name: str

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice: ...

    def request_refund(self, refund: RefundRequest) -> RefundAnswer:
        """Ask for a refund; asking again with the same `refund_no` is the same refund, paid once."""
        ...

    def query_refund(self, refund_no: str) -> RefundAnswer:
        """The platform's word on a refund now (for one whose notification never came)."""
        ...

    def upload_shipping_info(self, order: OrderSnapshot, transaction_id: str, logistics_type: str,
                             tracking_no: str | None = None, express_company: str | None = None) -> None: ...


@runtime_checkable
class Erp(Protocol):
    """The ERP: product master and warehouse stock out, completed orders in."""

    name: str

    def fetch_products(self) -> list[Sku]: ...

    def fetch_warehouse_stock(self, warehouse_ids: list[str] | None = None) -> list[StockCount]: ...

    def push_sales_order(self, order: OrderSnapshot) -> str: ...


@runtime_checkable
class Crm(Protocol):
    """Members and loyalty points."""

    name: str

    def upsert_member(self, buyer: Buyer) -> str: ...

    def add_points(self, member_id: str, order_id: str, points: int) -> None: ...


# role -> port; config.yaml's system `kind` -> role.
PORTS: dict[str, type] = {
    "channel": ChannelStockPublisher, "pos": PointOfSale, "local_courier": LocalCourier,
    "express_courier": ExpressCourier, "payment": PaymentPlatform, "erp": Erp, "crm": Crm,
}
ROLE_OF_KIND: dict[str, str] = {
    "wechat_shop": "channel", "pos_rest": "pos", "local_courier": "local_courier",
    "express_courier": "express_courier", "wechat_pay": "payment", "erp_soap": "erp", "crm_rest": "crm",
}

# Builds the connector for one system block: (system name, its config, binder) -> connector.
ConnectorFactory = Callable[[str, SystemConfig, Binder], Any]


# -- the flash-sale admission gate (Redis in production: connectors/redis_gate.py) ---------


@runtime_checkable
class AdmissionGate(Protocol):
    """One atomic decision per attempt; `give_back` is idempotent per attempt key. An attempt admitted before is
    AGAIN only for the same buyer and qty (else CONFLICT). Every call raises GateUnavailable when the gate's store
    cannot be reached."""

    def arm(self, terms: SaleTerms) -> None: ...

    def restore(self, terms: SaleTerms, held: Mapping[str, tuple[str, int]], ended: bool = False) -> bool:
        """Arm a sale the gate lost, holding `held` (attempt -> (buyer, units)); False if it knows the sale."""

    def admit(self, sale_id: str, attempt: str, buyer: str, qty: int, now_ms: int) -> Verdict: ...

    def give_back(self, sale_id: str, attempt: str) -> int: ...

    def end(self, sale_id: str) -> None: ...

    def state(self, sale_id: str) -> GateState | None: ...


class ConnectorRegistry:
    """Connectors by system name, built on first use by the factory the entrypoint wires in.

    Flows ask by role (`registry.pos()`), so no system name is written in them; callbacks and
    shipments name their system, and ask by name (`registry["express"]`).
    """

    def __init__(self, config: HubConfig, binder: Callable[[], Binder], factory: ConnectorFactory | None):
        self._config, self._binder, self.factory = config, binder, factory
        self._built: dict[str, Any] = {}
        self.overrides: dict[str, Any] = {}

    def system_for(self, role: str) -> str | None:
        """The name of the configured system that plays `role` (the first, if several do)."""
        for name, system in self._config.systems.items():
            if ROLE_OF_KIND.get(system.kind) == role:
                return name
        return None

    def has(self, role: str) -> bool:
        return self.system_for(role) is not None

    def __getitem__(self, name: str) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        if name not in self._built:
            system = self._config.systems.get(name)
            if system is None:
                raise KeyError(f"no system {name!r} in config.yaml")
            if self.factory is None:
                raise LookupError("no connector factory wired into this HubContext (see build_context)")
            from hub.metered import Metered  # every outbound call timed and counted per system

            self._built[name] = Metered(name, self.factory(name, system, self._binder()))
        return self._built[name]

    def __contains__(self, name: str) -> bool:
        return name in self._config.systems or name in self.overrides

    def _role(self, role: str) -> Any:
        name = self.system_for(role)
        if name is None:
            raise LookupError(f"no system in config.yaml plays the {role!r} role")
        return self[name]

    def erp(self) -> Erp:
        return self._role("erp")

    def crm(self) -> Crm:
        return self._role("crm")

    def pos(self) -> PointOfSale:
        return self._role("pos")

    def payment(self) -> PaymentPlatform:
        return self._role("payment")

    def local_courier(self) -> LocalCourier:
        return self._role("local_courier")

    def express_courier(self) -> ExpressCourier:
        return self._role("express_courier")

    def channel(self, name: str) -> ChannelStockPublisher:
        """The channel's stock publisher, by the system name its `publish_to` gives."""
        return self[name]

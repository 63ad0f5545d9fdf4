"""What the core asks of the outside world: one Protocol per role an external system plays, the
errors the core understands, and the registry that hands flows the connectors for a role.

Connectors (`connectors/`) implement these ports; the core never imports them and never names a
kind. Each connector class declares its `kind`, the `role` (port) it implements and the callback
use case it feeds, if any; the factory the entrypoint wires in reads those declarations. Which
systems serve which store or channel comes from config.yaml (`locations[].couriers`,
`channels[].payment`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from hub.config import PAID_ON_CHANNEL, HubConfig, LocationConfig, SystemConfig
from hub.domain.flash_sale import GateState, SaleTerms, Verdict
from hub.domain.model import (
    Booking,
    Buyer,
    CancelTerms,
    ChannelRefundRequest,
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
from hub.domain.payment_bills import Bill

# -- errors a connector raises and the core must tell apart -------------------------------


class ConnectorError(Exception):
    """A call to an external system failed. `system` names it; `code` is the system's own error code when it
    answered with one, `outcome` what the connector's mapping says that code means (`result_code`)."""

    maybe_applied = False          # see TransientError; a connector may say so of any failure
    code: str | int | None = None
    outcome: str | None = None

    def __init__(self, system: str, message: str, *, status: int | None = None):
        self.system, self.status = system, status
        super().__init__(f"{system}: {message}")


class TransientError(ConnectorError):
    """Worth retrying: timeout, connection error, 5xx, rate limit. `retry_after` in seconds if given.
    `maybe_applied`: the request may have reached the system and taken effect (its answer was lost).
    `wait_up_to`: the system said the condition lasts up to this many seconds (WeChat's payment not yet
    visible: about a minute), so a consumer tries again later until then instead of parking after its
    quick attempts (`hub/consumers.py`, retries due)."""

    def __init__(self, system: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None, wait_up_to: float | None = None):
        super().__init__(system, message, status=status)
        self.retry_after, self.wait_up_to = retry_after, wait_up_to


class PermanentError(ConnectorError):
    """Not worth retrying: the system refused the request (validation error, other 4xx, SOAP fault)."""


class OutcomeUnknown(PermanentError):
    """A create may or may not have been saved (its answer was lost) and the system can neither be
    asked nor safely sent it again: parked at once for an operator, never re-sent blindly."""


class SignatureError(ConnectorError):
    """What a system sent us does not verify: bad or missing signature, stale timestamp, replay."""


class BillIntegrityError(PermanentError):
    """A downloaded bill does not match the digest the platform signed for it: kept as an error, never compared."""


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


@dataclass(frozen=True)
class OrderPage:
    """One page of a channel's orders changed in a window: the channel's order ids, and the page to ask
    for next ("" when this was the last)."""

    order_ids: tuple[str, ...]
    next_page: str = ""


@runtime_checkable
class ChannelStockPublisher(Protocol):
    """A sales channel that shows per-store stock and pushes its orders (the mini-program shop).

    Pushes can all be lost (the channel gives up after its retries), so each channel also lists the orders
    changed in a window (`changed_orders`), which the hub's pull takes like a push (`flows/order_pull.py`).
    `pull_window_s` is the longest window the channel's list accepts in one ask."""

    name: str
    pull_window_s: int

    def update_store_stock(self, sku: str, store_id: str, available: int) -> None: ...

    def get_store_stock(self, sku: str, store_id: str) -> int: ...

    def parse_push(self, query: Mapping[str, str], body: bytes) -> dict[str, Any]: ...

    def get_order(self, external_order_id: str) -> PlaceOrder: ...

    def changed_orders(self, since: datetime, until: datetime, stores: tuple[str, ...],
                       page: str = "") -> OrderPage:
        """The ids of orders the channel changed in [since, until), by its update time, from any of the hub's
        `stores` (a channel that lists per store asks each); `page` is a previous answer's `next_page`."""
        ...


@runtime_checkable
class StoreStockBatches(Protocol):
    """A channel whose stock API takes many SKUs of one store in one call (Meituan's retail/sku/stock): channel
    sync sends it one call per store and batch, of at most `stocks_per_call` figures, instead of one per SKU."""

    stocks_per_call: int

    def update_store_stocks(self, store_id: str, figures: Iterable[tuple[str, int]]) -> None: ...


@dataclass(frozen=True)
class ChannelDelivery:
    """How a channel's order left the store, as the channel is told: an express waybill or a same-city rider's
    booking. `company` is the hub's name for who carries it (an express courier's `company_code()`, a local
    courier's system name); each channel's mapping turns it into its own code."""

    kind: str                              # express | same_city
    company: str
    waybill: str                           # the waybill number, or the courier's order number for the rider
    lines: tuple[tuple[str, int], ...]     # (sku, qty) that went


@dataclass(frozen=True)
class AfterSale:
    """A buyer's after-sales request (售后) made in the channel: money back, or goods and money back."""

    after_sale_id: str
    external_order_id: str
    kind: str                  # refund (仅退款) | return (退货退款)
    status: str                # requested | accepted | refunded | rejected | cancelled | failed (the mapping's)
    amount_fen: int
    reason: str = ""


@runtime_checkable
class ChannelAfterSales(Protocol):
    """What a channel that runs its own delivery display and after-sales (the WeChat shop) also offers; the
    flows ask a channel's connector for these by name and leave a channel without them alone."""

    def send_delivery(self, external_order_id: str, delivery: ChannelDelivery) -> None:
        """Tell the channel how the order left; the same delivery told again changes nothing."""
        ...

    def get_after_sale(self, after_sale_id: str) -> AfterSale: ...

    def accept_after_sale(self, after_sale_id: str) -> None:
        """Agree: the channel pays the buyer back (a return: once the goods are back). Again: no change."""
        ...

    def reject_after_sale(self, after_sale_id: str, reason: str) -> None: ...


@runtime_checkable
class ChannelRiders(Protocol):
    """A channel with riders of its own (an instant-retail platform): the hub hands an order to the platform's
    rider and reads the platform's reports on him; an order the store's courier delivers is told back."""

    name: str

    def call_platform_rider(self, external_order_id: str) -> None: ...

    def rider_report(self, push: dict[str, Any]) -> TrackingEvent: ...

    def sync_rider(self, external_order_id: str, status: str, rider_name: str | None, rider_phone: str | None,
                   lat: float | None, lng: float | None, carrier_ref: str | None = None) -> None: ...


@runtime_checkable
class ChannelRefunds(Protocol):
    """A channel that takes its orders' refunds itself (a platform's 退款): it asks, the hub answers."""

    name: str

    def refund_request(self, push: dict[str, Any]) -> ChannelRefundRequest: ...

    def answer_refund(self, external_order_id: str, refund_id: str, agree: bool, reason: str) -> None: ...


@runtime_checkable
class ChannelOrderRefusal(Protocol):
    """A channel whose orders name their store (a platform's `app_poi_code`): an order that store cannot fill is
    cancelled back to the channel with its cause (StoreCannotFill.CAUSES), never routed to another store."""

    name: str

    def cancel_order(self, external_order_id: str, cause: str, reason: str) -> None: ...


@runtime_checkable
class PointOfSale(Protocol):
    """A store's till: every order the store fulfils (pickup, delivery, a parcel) appears there and follows the
    hub's state."""

    name: str
    binder: Binder

    def push_order(self, order: OrderSnapshot) -> str: ...

    def update_order_state(self, order: OrderSnapshot, state: str) -> None: ...

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

    def book(self, quote: DeliveryQuote) -> Booking:
        """Order the delivery `quote` priced; booking the same quote twice is one booking. The booking's
        `shipment_ref` is the quote's id, or the courier's own order number when it gives one at booking."""
        ...

    def cancel(self, order_id: str, reason: str) -> int:
        """Cancel the order's delivery; the penalty the courier kept (fen, 0 for none). Twice is fine."""
        ...

    def cancel_terms(self, order_id: str) -> CancelTerms:
        """Whether the courier would cancel the order's delivery now, and at what penalty (its pre-cancel)."""
        ...

    def add_tip(self, order_id: str, tip_fen: int, total_fen: int) -> int:
        """Add `tip_fen` to the booked delivery's fee so a rider takes it, `total_fen` being the order's tip with
        it (some couriers take the increment, others the total); the total tip the courier now holds."""
        ...

    def query(self, order_id: str) -> CourierState | None:
        """The delivery of the hub's order `order_id` as the courier holds it; None if it holds none."""
        ...

    def parse_callback(self, body: bytes, query: Mapping[str, str] | None = None) -> TrackingEvent:
        """Verify the callback's signature (in its body, or its query string's `sign`) and map it: a claim."""
        ...

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

    def poll_tracking(self, waybill_no: str, phone: str = "") -> list[TrackingEvent]:
        """The waybill's tracking asked now (for one whose pushes stopped)."""
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

    def daily_bill(self, day: date) -> Bill:
        """The merchant's trade and refund bills of `day` (the platform's calendar), digests verified;
        BillIntegrityError when a file does not match the digest the platform signed."""
        ...


@runtime_checkable
class Erp(Protocol):
    """The ERP: product master and warehouse stock out, completed orders in."""

    name: str

    def fetch_products(self) -> list[Sku]: ...

    def fetch_warehouse_stock(self, warehouse_ids: list[str] | None = None,
                              sku_codes: list[str] | None = None) -> list[StockCount]:
        """On-hand counts per (warehouse, SKU); `sku_codes` names the SKUs to ask for when the ERP keeps no
        product list the hub pulls (then it cannot list its items itself)."""
        ...

    def push_sales_order(self, order: OrderSnapshot) -> str: ...


@runtime_checkable
class Crm(Protocol):
    """Members and loyalty points."""

    name: str

    def upsert_member(self, buyer: Buyer) -> str: ...

    def add_points(self, member_id: str, order_id: str, points: int) -> None: ...

    def coupon(self, verb: str, code: str, member_id: str, order_key: str, key: str | None = None) -> int:
        """lock | unlock | use | return the coupon for the order; returns its value in fen. CrmRefused when
        the CRM says no (its code: coupon_not_owned, coupon_used, ...). `key`: the Idempotency-Key, default
        one per verb and order (a give-back checked by the CRM's state passes a fresh one)."""
        ...

    def hold_points(self, member_id: str, points: int, order_key: str) -> str:
        """Hold points for an order; returns the hold's id. CrmRefused (points_insufficient) beyond the balance."""
        ...

    def settle_points(self, verb: str, member_id: str, hold_id: str) -> None:
        """use | release a hold."""
        ...

    def move_points(self, member_id: str, points: int, key: str, reason: str) -> None:
        """Add (points > 0) or take back (< 0) points, once per `key`."""
        ...


class CrmRefused(PermanentError):
    """The CRM refused a member step; `code` is its reason (coupon_not_owned, points_insufficient, ...)."""

    code: str

    def __init__(self, system: str, code: str, message: str, *, status: int | None = None):
        super().__init__(system, f"{code}: {message}", status=status)
        self.code, self.reason = code, message


# role -> port. A connector class declares `role = <one of these>`.
PORTS: dict[str, type] = {
    "channel": ChannelStockPublisher, "pos": PointOfSale, "local_courier": LocalCourier,
    "express_courier": ExpressCourier, "payment": PaymentPlatform, "erp": Erp, "crm": Crm,
}

# -- what a system's own callback (`/callbacks/<system>`) asks of its connector, per use case ----------
# A connector declaring `callback = <use case>` satisfies that use case's Protocol (its module ends with
# `_callback_check: type[<Protocol>] = <Class>`); hub/api/callbacks.py looks the connector up typed by it.


class PaymentNotices(Protocol):
    """`payment_notice`: a payment platform's signed payment and refund notifications."""

    name: str

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice: ...


class ChannelPushes(Protocol):
    """`channel_order_push`: a channel's order push, then the order as the channel holds it now."""

    name: str

    def parse_push(self, query: Mapping[str, str], body: bytes) -> dict[str, Any]: ...

    def get_order(self, external_order_id: str) -> PlaceOrder: ...


class TrackingPushes(Protocol):
    """`express_tracking_push`: a parcel carrier's tracking push (a form)."""

    name: str

    def parse_tracking_push(self, form: Mapping[str, str]) -> list[TrackingEvent]: ...


class CourierCallbacks(Protocol):
    """`courier_claim`: a rider's status, a claim confirmed with the courier's query API."""

    name: str

    def parse_callback(self, body: bytes, query: Mapping[str, str] | None = None) -> TrackingEvent: ...

    def query(self, order_id: str) -> CourierState | None: ...


# callback use case -> what its handler calls on the connector; `CALLBACKS` are its keys
CALLBACK_PORTS: dict[str, type] = {
    "payment_notice": PaymentNotices, "channel_order_push": ChannelPushes,
    "express_tracking_push": TrackingPushes, "courier_claim": CourierCallbacks,
}
CALLBACKS = tuple(CALLBACK_PORTS)


class CallbackConnectors(dict[str, Any]):
    """The connectors the callbacks use, by system name (the API's `deps.connectors`), each handed out typed
    by the callback use case its system declares, so the handlers are checked against that Protocol."""

    def payment_notices(self, name: str) -> PaymentNotices:
        return self[name]

    def channel_pushes(self, name: str) -> ChannelPushes:
        return self[name]

    def tracking_pushes(self, name: str) -> TrackingPushes:
        return self[name]

    def courier_callbacks(self, name: str) -> CourierCallbacks:
        return self[name]


@dataclass(frozen=True)
class Declaration:
    """What a connector class says of itself: its kind, the role it plays and, when the system calls
    back, the use case its callback feeds and the bodies it expects back (accepted: a JSON object, or
    a text answered as text/plain; an error: fields set beside the hub's own error)."""

    kind: str
    role: str
    callback: str | None = None
    accepted: dict[str, Any] | str = field(default_factory=dict)
    error_body: Mapping[str, Any] = field(default_factory=dict)
    # A channel whose buyers pay it (its own checkout, refunds included): its orders are `payment: channel`.
    takes_payment: bool = False

    @classmethod
    def of(cls, connector_class: type[Any]) -> Declaration:
        return cls(kind=connector_class.kind, role=connector_class.role,
                   callback=getattr(connector_class, "callback", None),
                   accepted=getattr(connector_class, "callback_accepted", {}),
                   error_body=getattr(connector_class, "callback_error", {}),
                   takes_payment=bool(getattr(connector_class, "takes_payment", False)))


class ConnectorFactory(Protocol):
    """Builds the connector for one system block, and tells what the connector of a kind declares
    (the entrypoint passes `connectors.registry.build_connector`)."""

    def __call__(self, name: str, system: SystemConfig, binder: Binder) -> Any: ...

    def declared(self, kind: str) -> Declaration: ...


class HasChannel(Protocol):
    """An order, as the registry reads it: the channel it came through."""

    channel: str


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


class SoldOutCache(Protocol):
    """Where a gateway learns, without the order database, that a (location, SKU) has too little for a pickup
    order (`hub/domain/sold_out.py` says what is kept and for how long). Never raises: a store that cannot be
    reached knows nothing (the ledger decides) and what could not be written is simply not kept."""

    def lookup(self, pairs: Sequence[tuple[str, str]], placed_key: str) -> tuple[dict[tuple[str, str], int], bool]:
        """The low figures known for `pairs`, and whether an order with `placed_key` reached the ledger."""

    def note(self, low: Mapping[tuple[str, str], int], other: Iterable[tuple[str, str]] = (),
             ttl_ms: int = ...) -> None:
        """Keep each low figure for `ttl_ms`; forget `other`'s."""

    def placed(self, key: str, ttl_s: int = ...) -> None:
        """An order with this key reaches the ledger: its retries are never refused from the cache."""


class ConnectorRegistry:
    """Connectors by system name, built on first use by the factory the entrypoint wires in.

    Flows ask by role and place — `couriers(store)`, `payment_platform_for(order)`, `erp()` — so no
    system name or kind is written in them; shipments and bills name their system, and ask by name, typed
    by the port (`local_courier(shipment.carrier)`; `registry[name]` is `object`). Several systems may play
    one role; config.yaml says which serve which store (`locations[].couriers`) or channel
    (`channels[].payment`).
    """

    def __init__(self, config: HubConfig, binder: Callable[[], Binder], factory: ConnectorFactory | None):
        self._config, self._binder, self.factory = config, binder, factory
        self._built: dict[str, Any] = {}
        self.overrides: dict[str, Any] = {}
        self._by_role: dict[str, list[str]] | None = None

    # -- what the configured systems declare ---------------------------------------------------

    def declared(self, name: str) -> Declaration | None:
        """What system `name`'s connector declares; None for no such system or no factory wired in."""
        system = self._config.systems.get(name)
        if system is None or self.factory is None:
            return None
        return self.factory.declared(system.kind)

    def role_of(self, name: str) -> str | None:
        found = self.declared(name)
        return found.role if found else None

    def names(self, role: str) -> list[str]:
        """Every configured system that plays `role`, in config.yaml's order."""
        if self._by_role is None:          # the config and the factory are fixed: ask each system once
            by_role: dict[str, list[str]] = {}
            for name in self._config.systems:
                role_of = self.role_of(name)
                if role_of is not None:
                    by_role.setdefault(role_of, []).append(name)
            self._by_role = by_role
        return list(self._by_role.get(role, ()))

    def system_for(self, role: str) -> str | None:
        """The name of the configured system that plays `role` (the first, if several do)."""
        return next(iter(self.names(role)), None)

    def has(self, role: str) -> bool:
        return self.system_for(role) is not None

    # -- by name ---------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> object:
        """The connector of system `name`, untyped: callers ask through a typed accessor below (by role, or by
        name typed by the port: `local_courier(name)`, `payment(name)`, ...)."""
        return self._named(name)

    def _named(self, name: str) -> Any:
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
        return self._named(name)

    # -- by role and place -------------------------------------------------------------------------

    def _serving(self, location_id: str | None, role: str) -> list[str]:
        """The systems of `role` a location names in `couriers` (its order), else every one of that role."""
        loc = self._config.location(location_id or "")
        of_role = self.names(role)
        if loc is None or loc.couriers is None:
            return of_role
        return [name for name in loc.couriers if name in of_role]

    def couriers(self, location_id: str | None) -> list[LocalCourier]:
        """The local couriers that serve the store, in its configured order (default: every one)."""
        return [self._named(name) for name in self._serving(location_id, "local_courier")]

    def express_courier_for(self, location_id: str | None) -> ExpressCourier:
        """The parcel carrier that ships from the location: the first it names, else the first configured."""
        names = self._serving(location_id, "express_courier")
        if not names:
            raise LookupError(f"no express courier in config.yaml ships from {location_id!r}")
        return self._named(names[0])

    def channels(self) -> list[ChannelStockPublisher]:
        return [self._named(name) for name in self.names("channel")]

    def payment_system_for(self, channel_id: str) -> str | None:
        """The name of the system that takes a channel's payments: its `payment`, else the single payment
        system; None when the channel's own platform takes them (`payment: channel`)."""
        channel = self._config.channel(channel_id)
        chosen = channel.payment if channel is not None else None
        if chosen == PAID_ON_CHANNEL:
            return None
        name = chosen or self.system_for("payment")
        if name is None:
            raise LookupError(f"no system in config.yaml takes the payments of channel {channel_id!r}")
        return name

    def payment_platform_for(self, order: HasChannel) -> PaymentPlatform | None:
        """The system that took the order's payment; None when the channel's platform took it itself."""
        name = self.payment_system_for(order.channel)
        return self._named(name) if name is not None else None

    def erp(self) -> Erp:
        return self._role("erp")

    def crm(self) -> Crm:
        return self._role("crm")

    def pos(self) -> PointOfSale:
        return self._role("pos")

    def channel(self, name: str) -> ChannelStockPublisher:
        """The channel's stock publisher, by the system name its `publish_to` gives."""
        return self._named(name)

    # By the name a shipment or a bill gives (`shipment.carrier`), typed by the port; without a name, the
    # first system of the role (for callers not asking by place).
    def payment(self, name: str | None = None) -> PaymentPlatform:
        return self._named(name) if name is not None else self._role("payment")

    def local_courier(self, name: str | None = None) -> LocalCourier:
        return self._named(name) if name is not None else self._role("local_courier")

    def express_courier(self, name: str | None = None) -> ExpressCourier:
        return self._named(name) if name is not None else self._role("express_courier")

"""Load and validate config.yaml.

Every problem is reported with the key path that holds it, so `hub check-config` can
list them all at once. Secrets must be ${ENV_VAR} references, never literals.
"""
from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.domain import geo, hours
from hub.domain.stock import Allocation

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Field names that hold secrets: these may only come from the environment.
_SECRET_NAME = re.compile(r"(^|_)(key|secret|password|salt|checkword|token)$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# `channels[].payment: channel` — the channel's own platform takes its payments (and refunds them).
PAID_ON_CHANNEL = "channel"


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every (key path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {k}: {m}" for k, m in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # Every route's request body, callbacks included: a bigger one is refused (413) while it is read.
    max_body_bytes: int = Field(1_000_000, ge=1024)
    # The production gateway's HTTP server (`hub run gateway` alone on RabbitMQ): granian's blocking threads (Rust,
    # hyper) in a worker it forks, gunicorn's threaded worker in the supervised process, or nameko's eventlet
    # entrypoint (the embedded mode always uses nameko's). HUB_GATEWAY_SERVER overrides it. granian costs a
    # third less gateway CPU per rush attempt than gunicorn; gunicorn answers malformed HTTP in the API's JSON.
    server: Literal["granian", "gunicorn", "nameko"] = "granian"
    # 8: at 16 the threads contend for the GIL (a rush attempt 0.41 → 0.34 ms of gateway CPU at 8, a plain one
    # 0.57 → 0.48, receipts alike); fewer would leave requests waiting behind database waits.
    threads: int = Field(8, ge=1, le=512)    # requests at once per gateway process


class HubSection(_Strict):
    database_url: str
    broker_url: str
    redis_url: str | None = None          # the flash-sale gate in Redis (production); absent: in-process
    http: HttpConfig = HttpConfig()
    timezone: str = "+08:00"
    reservation_ttl_minutes: int = Field(15, gt=0)
    # How long a store's low figure answers pickup orders 409 without the order database (hub/domain/sold_out.py):
    # the longest a wrong refusal lasts when stock came back unseen; 0 turns the sold-out cache off.
    sold_out_ttl_ms: int = Field(2000, ge=0)
    pickup_uncollected_days: int = Field(3, gt=0)
    pickup_code_max_attempts: int = Field(5, gt=0)
    # member_holds rows of attempts placed or given back are kept this long (a retry or a member consumer's
    # replay within it still finds its attempt), then removed by housekeeping; an open hold never is
    member_holds_keep_days: int = Field(30, gt=0)
    pickup_code_lock_minutes: int = Field(30, gt=0)
    max_courier_bookings: int = Field(3, gt=0)         # riders booked for one order before an operator decides
    courier_quote_deadline_s: float = Field(3.0, gt=0)  # couriers asked in parallel; a later answer is no quote
    ops_key: str = Field(min_length=8)
    reconcile_interval_s: int = Field(300, ge=10)     # channel stock reconciliation, the safety net
    order_pull_interval_s: int = Field(60, ge=5)      # each channel's orders changed since its cursor, pulled
    order_pull_overlap_s: int = Field(120, ge=0)      # asked again before the cursor: the channel's clock may lag
    # `hub up`: processes per service (competing consumers); a service not named runs once
    replicas: dict[str, int] = {}

    @field_validator("replicas")
    @classmethod
    def _replicas(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [f"{name}={n}" for name, n in v.items() if n < 0]
        if bad:
            raise ValueError(f"replica counts must be 0 or more: {', '.join(bad)}")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        if not re.fullmatch(r"[+-](0\d|1[0-4]):[0-5]\d", v):
            raise ValueError("must be an offset like +08:00")
        return v


class RoutingSection(_Strict):
    tie_break: list[Literal["distance", "stock", "priority"]] = ["distance", "stock", "priority"]
    allow_split_express: bool = False

    @field_validator("allow_split_express")
    @classmethod
    def _one_waybill(cls, v: bool) -> bool:
        # Routing could split an express order, but fulfilment books one waybill from one
        # warehouse: a split order would only ever become a dead letter.
        if v:
            raise ValueError("split express shipments are not supported: one waybill ships from one warehouse")
        return v


class AllocationRule(_Strict):
    """An exception to a channel's default allocation: for one SKU, one store, or one SKU at one store (the
    most specific rule that sets a field wins; a field it leaves out comes from the less specific ones)."""
    sku: str | None = Field(None, min_length=1, max_length=64)
    store: str | None = Field(None, min_length=1, max_length=32)
    share: int | None = Field(None, ge=0, le=100)
    cap: int | None = Field(None, ge=0)
    listed: bool | None = None

    @model_validator(mode="after")
    def _names_something(self) -> AllocationRule:
        if self.sku is None and self.store is None:
            raise ValueError("an allocation rule names a sku, a store or both (the default is the block itself)")
        if self.share is None and self.cap is None and self.listed is None:
            raise ValueError("an allocation rule sets share, cap or listed")
        return self


class ChannelAllocation(_Strict):
    """A channel's part of each store's stock per SKU: a share (percent) of what the store may sell, a cap,
    or not listed at all; `rules` for particular SKUs and stores. Absent: the channel may sell it all."""
    share: int = Field(100, ge=0, le=100)
    cap: int | None = Field(None, ge=0)
    listed: bool = True
    rules: list[AllocationRule] = []

    @model_validator(mode="after")
    def _one_rule_per_target(self) -> ChannelAllocation:
        seen: set[tuple[str | None, str | None]] = set()
        for rule in self.rules:
            if (rule.sku, rule.store) in seen:
                raise ValueError(f"two allocation rules for sku {rule.sku!r} at store {rule.store!r}")
            seen.add((rule.sku, rule.store))
        return self

    def for_item(self, store_id: str, sku: str) -> Allocation:
        fields: dict[str, Any] = {"share": self.share, "cap": self.cap, "listed": self.listed}
        # Less specific first, so a more specific rule overrides what it sets.
        for rule in sorted((r for r in self.rules if r.store in (None, store_id) and r.sku in (None, sku)),
                           key=lambda r: (r.sku is not None, r.store is not None)):
            fields.update({k: v for k, v in (("share", rule.share), ("cap", rule.cap), ("listed", rule.listed))
                           if v is not None})
        return Allocation(**fields)


class ChannelConfig(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_\-]+$")
    name: str
    key: str = Field(min_length=8)
    safety_stock: int = Field(0, ge=0)
    publish_to: str | None = None
    # The system that takes this channel's payments; absent: the single payment system.
    payment: str | None = None
    allocation: ChannelAllocation | None = None
    # Who delivers this channel's delivery orders: the store's couriers (the hub books one and, when the channel
    # takes such reports, tells it the rider) or the platform's own rider; an order's own word (a platform's
    # logistics code, through its mapping) comes first.
    rider: Literal["store", "platform"] = "store"

    def allocation_for(self, store_id: str, sku: str) -> Allocation | None:
        """The channel's part of (store, sku), None when it may sell all of it (no allocation block)."""
        return self.allocation.for_item(store_id, sku) if self.allocation is not None else None


def _hhmm(v: str, *, close: bool = False) -> str:
    if not (_TIME.match(v) or (close and v == "24:00")):
        raise ValueError("must be HH:MM" + (" (24:00 for the end of the day)" if close else ""))
    return v


class Period(_Strict):
    """One opening period, local time: `close` not after `open` runs past midnight (22:00-02:00 closes at
    02:00 the next morning); `close` itself is closed; 24:00 is the end of the day."""
    open: str
    close: str

    @field_validator("open")
    @classmethod
    def _open(cls, v: str) -> str:
        return _hhmm(v)

    @field_validator("close")
    @classmethod
    def _close(cls, v: str) -> str:
        return _hhmm(v, close=True)

    @model_validator(mode="after")
    def _not_empty(self) -> Period:
        if self.open == self.close:
            raise ValueError(f"open and close are both {self.open}: a period open around the clock is "
                             "00:00-24:00 (or leave opening_hours out)")
        return self


class OpeningHours(_Strict):
    """A store's opening calendar (hub/domain/hours.py), local time. The old single pair `{open, close}`
    means that period every day. Otherwise: `periods` every day, `weekly` a weekday's own periods
    (an empty list: closed that weekday), `closed` dates no period opens on (holidays, closures),
    `special` a date's own periods (replacing the rest that day). A store open around the clock with no
    closures leaves opening_hours out."""
    open: str | None = None
    close: str | None = None
    periods: list[Period] = []
    weekly: dict[str, list[Period]] = {}
    closed: list[date] = []
    special: dict[date, list[Period]] = {}

    @field_validator("open")
    @classmethod
    def _open(cls, v: str | None) -> str | None:
        return None if v is None else _hhmm(v)

    @field_validator("close")
    @classmethod
    def _close(cls, v: str | None) -> str | None:
        return None if v is None else _hhmm(v, close=True)

    @field_validator("weekly")
    @classmethod
    def _weekdays(cls, v: dict[str, list[Period]]) -> dict[str, list[Period]]:
        if unknown := [d for d in v if d not in hours.WEEKDAYS]:
            raise ValueError(f"unknown weekday(s) {', '.join(map(repr, unknown))}: use {', '.join(hours.WEEKDAYS)}")
        return v

    @model_validator(mode="after")
    def _a_calendar(self) -> OpeningHours:
        if (self.open is None) != (self.close is None):
            raise ValueError("open and close are given together")
        if self.open is not None and self.periods:
            raise ValueError("either open/close (the same period every day) or periods, not both")
        if self.open is not None and self.open == self.close:
            raise ValueError(f"open and close are both {self.open}: leave opening_hours out for a store "
                             "open around the clock")
        for what, periods in [("periods", self.daily), *((f"weekly.{d}", p) for d, p in self.weekly.items()),
                              *((f"special.{d}", p) for d, p in self.special.items())]:
            if clash := hours.overlap(periods):
                a, b = clash
                raise ValueError(f"{what}: {a.open}-{a.close} and {b.open}-{b.close} overlap")
        if not any(self.weekly.get(d, self.daily) for d in hours.WEEKDAYS):
            raise ValueError("no period on any weekday: the store would never open (give open/close, "
                             "periods or weekly)")
        return self

    @property
    def daily(self) -> list[Period]:
        """Every day's periods (a weekday in `weekly` or a date in `special` has its own)."""
        if self.open is not None and self.close is not None:
            return [Period(open=self.open, close=self.close)]
        return self.periods

    def view(self) -> dict[str, Any]:
        """The calendar as the API shows it (the old pair as every day's one period)."""
        return {"periods": [p.model_dump() for p in self.daily],
                "weekly": {d: [p.model_dump() for p in ps] for d, ps in self.weekly.items()},
                "closed": [d.isoformat() for d in self.closed],
                "special": {d.isoformat(): [p.model_dump() for p in ps] for d, ps in self.special.items()}}


class AreaPoint(_Strict):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)


class DeliveryArea(_Strict):
    """A polygon the store delivers into (GCJ-02, as config's coordinates are), with its minimum order (the
    lines' value at their prices, before discounts) and its delivery fee: Meituan `shipping/save`'s
    points, `min_price` and `shipping_fee`, in fen."""
    name: str = Field(min_length=1, max_length=64)
    points: list[AreaPoint] = Field(min_length=3, max_length=500)
    min_order_fen: int = Field(0, ge=0, le=2_147_483_647)
    delivery_fee_fen: int = Field(0, ge=0, le=2_147_483_647)

    @model_validator(mode="after")
    def _a_shape(self) -> DeliveryArea:
        if geo.polygon_area(self.polygon) == 0:
            raise ValueError(f"area {self.name!r}: its points lie on one line (no inside)")
        if crossing := geo.self_intersection(self.polygon):
            i, j = crossing
            raise ValueError(f"area {self.name!r}: edges {i}-{i + 1} and {j}-{(j + 1) % len(self.points)} "
                             "cross (an area's boundary may not cross itself)")
        return self

    @property
    def polygon(self) -> tuple[tuple[float, float], ...]:
        return tuple((p.lat, p.lng) for p in self.points)


class DispatchPolicy(_Strict):
    """When a store's delivery rider is booked: when the pick is complete (the default a retailer expects: the
    rider does not wait at the counter), at payment, or `delay_s` after payment (the platforms' 延迟发单)."""
    book: Literal["at_payment", "at_pick_complete", "after_payment"] = "at_pick_complete"
    delay_s: int = Field(0, ge=0, le=86_400)


class EscalationPolicy(_Strict):
    """When no rider accepted a store's booking within `after_minutes`: add `tip_fen` (up to `max_tip_fen` in all),
    one step per `after_minutes`; once the tips are spent (or none are allowed), `then`: re-dispatch to the store's
    next courier (the booking cancelled where the courier's rules allow), send it by express from the store, or park
    it for an operator. `last` is what follows when no courier is left or none can take the order at all."""
    after_minutes: int = Field(gt=0, le=24 * 60)
    tip_fen: int = Field(0, ge=0)
    max_tip_fen: int = Field(0, ge=0, le=100_00)
    then: Literal["next_courier", "express", "operator"] = "next_courier"
    last: Literal["express", "operator"] = "operator"

    @model_validator(mode="after")
    def _tips_bounded(self) -> EscalationPolicy:
        if self.tip_fen > self.max_tip_fen:
            raise ValueError(f"tip_fen {self.tip_fen} is more than max_tip_fen {self.max_tip_fen}")
        return self


class StoreCapacity(_Strict):
    """At most `max_orders` orders routed to the store per `window_minutes` (Ele.me's order.limited.taking)."""
    max_orders: int = Field(gt=0)
    window_minutes: int = Field(60, gt=0, le=1440)


class LocationConfig(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    kind: Literal["store", "warehouse"]
    name: str
    address: str = ""
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    pickup: bool = False
    delivery_radius_km: float = Field(0, ge=0)
    priority: int = 100
    opening_hours: OpeningHours | None = None
    # Where the store delivers (polygons, GCJ-02); absent: within delivery_radius_km.
    delivery_areas: list[DeliveryArea] = []
    safety_stock: int = Field(0, ge=0)
    pos_key: str | None = None
    phone: str = Field("", pattern=r"^[0-9+\- ]*$")     # the sender's phone on waybills (couriers want one)
    # The couriers (systems) that serve this location, in the order asked; absent: every one configured.
    couriers: list[str] | None = None
    # How the booked courier is chosen among them (hub/domain/courier_choice.py): the first that quotes
    # (preference), the cheapest quote, or the soonest promised pickup (fastest).
    courier_rule: Literal["preference", "cheapest", "fastest"] = "preference"
    dispatch: DispatchPolicy = DispatchPolicy()
    escalation: EscalationPolicy | None = None     # absent: the booking waits (and `hub.max_courier_bookings` caps)
    capacity: StoreCapacity | None = None          # absent: no cap
    # A store that packs parcels for the express carrier (ship from store): routing sends it an express order
    # no warehouse can ship whole; the waybill is booked once the store has picked it.
    ships_express: bool = False

    @model_validator(mode="after")
    def _store_needs(self) -> LocationConfig:
        if self.kind == "store" and not self.pos_key:
            raise ValueError("a store needs a pos_key")
        if self.kind == "warehouse" and self.ships_express:
            raise ValueError("ships_express is a store's: every warehouse ships express")
        if self.kind == "warehouse" and (self.pickup or self.delivery_radius_km or self.delivery_areas):
            raise ValueError("a warehouse offers neither pickup nor local delivery")
        if self.delivery_areas and self.delivery_radius_km:
            raise ValueError("a store with delivery_areas has no delivery_radius_km: its areas say where it "
                             "delivers")
        names = [a.name for a in self.delivery_areas]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"delivery_areas: duplicate name(s) {', '.join(dup)}")
        return self

    @property
    def is_store(self) -> bool:
        return self.kind == "store"


class SystemConfig(BaseModel):
    """One external system. `kind` picks the connector; the rest is that connector's own."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str

    def get(self, name: str, default: Any = None) -> Any:
        return (self.model_extra or {}).get(name, default)


class HubConfig(_Strict):
    hub: HubSection
    routing: RoutingSection = RoutingSection()
    channels: list[ChannelConfig] = Field(min_length=1)
    locations: list[LocationConfig] = Field(min_length=1)
    systems: dict[str, SystemConfig] = {}

    @model_validator(mode="after")
    def _cross_checks(self) -> HubConfig:
        for what, items in (("locations", self.locations), ("channels", self.channels)):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise ValueError(f"{what}: duplicate id {item.id!r}")
                seen.add(item.id)
        for ch in self.channels:
            if ch.publish_to and ch.publish_to not in self.systems:
                raise ValueError(f"channels: {ch.id} publishes to unknown system {ch.publish_to!r}")
            if ch.payment and ch.payment != PAID_ON_CHANNEL and ch.payment not in self.systems:
                raise ValueError(f"channels: {ch.id} takes payment through unknown system {ch.payment!r}")
            stores = {loc.id for loc in self.locations if loc.kind == "store"}
            for rule in ch.allocation.rules if ch.allocation else []:
                if rule.store is not None and rule.store not in stores:
                    raise ValueError(f"channels: {ch.id}'s allocation names {rule.store!r}, which is not a store")
        for loc in self.locations:
            unknown = [name for name in loc.couriers or [] if name not in self.systems]
            if unknown:
                raise ValueError(f"locations: {loc.id} is served by unknown courier(s) {', '.join(unknown)}")
        return self

    # Lookups the core uses all the time.
    def _index(self, name: str, items: list[Any]) -> dict[str, Any]:
        """Looked up on every request and per location in a stock answer: indexed once, not searched each
        time. Keyed on the list itself, so a `model_copy(update=...)` with other locations re-indexes."""
        cached = self.__dict__.get(f"_index_{name}")
        if cached is None or cached[0] is not items:
            cached = (items, {x.id: x for x in items})
            self.__dict__[f"_index_{name}"] = cached
        return cached[1]

    def location(self, location_id: str) -> LocationConfig | None:
        return self._index("locations", self.locations).get(location_id)

    def channel(self, channel_id: str) -> ChannelConfig | None:
        return self._index("channels", self.channels).get(channel_id)

    def known_location(self, location_id: str | None) -> LocationConfig:
        """A location the caller knows is configured (a stock row's, an order's): LookupError if it is not."""
        found = self.location(location_id) if location_id is not None else None
        if found is None:
            raise LookupError(f"no location {location_id!r} in config.yaml")
        return found

    def known_channel(self, channel_id: str) -> ChannelConfig:
        """A channel the caller knows is configured (an authenticated channel's own): LookupError if not."""
        found = self.channel(channel_id)
        if found is None:
            raise LookupError(f"no channel {channel_id!r} in config.yaml")
        return found

    @property
    def stores(self) -> list[LocationConfig]:
        return [loc for loc in self.locations if loc.kind == "store"]

    @property
    def warehouses(self) -> list[LocationConfig]:
        return [loc for loc in self.locations if loc.kind == "warehouse"]

    def safety_stock(self, location_id: str) -> int:
        loc = self.location(location_id)
        return loc.safety_stock if loc else 0


def _resolve(node: Any, path: str, env: dict[str, str], problems: list[tuple[str, str]]) -> Any:
    """Substitute ${VAR} references, refusing literal secrets."""
    if isinstance(node, dict):
        # YAML reads an unquoted 2026-10-01 as a date: kept as its text, so an error's path names it so.
        return {(k.isoformat() if isinstance(k, date) else k): _resolve(v, f"{path}.{k}" if path else str(k), env,
                                                                        problems) for k, v in node.items()}
    if isinstance(node, date):
        return node.isoformat()
    if isinstance(node, list):
        return [_resolve(v, f"{path}[{i}]", env, problems) for i, v in enumerate(node)]
    leaf = path.rsplit(".", 1)[-1]
    is_secret = bool(_SECRET_NAME.search(leaf))
    if isinstance(node, str):
        refs = list(_ENV_REF.finditer(node))
        if is_secret and not (len(refs) == 1 and refs[0].group(0) == node.strip()):
            problems.append((path, "a secret must be a ${ENV_VAR} reference, not a literal"))
            return node
        if is_secret and refs[0].group(2) is not None:
            problems.append((path, "a secret may not carry a default value"))

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            problems.append((path, f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(sub, node)
    if is_secret and node is not None:
        problems.append((path, "a secret must be a ${ENV_VAR} reference, not a literal"))
    return node


def _loc(err_loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """Turn a pydantic error location into a readable key path, naming list items by id."""
    parts: list[str] = []
    node: Any = raw
    for part in err_loc:
        if isinstance(part, int):
            ident = None
            if isinstance(node, list) and 0 <= part < len(node) and isinstance(node[part], dict):
                ident = node[part].get("id")
            parts[-1] = f"{parts[-1]}[{ident if ident else part}]" if parts else f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def parse_config(text: str, env: dict[str, str] | None = None, source: str = "config") -> HubConfig:
    """Parse YAML text into a validated HubConfig, or raise ConfigError listing every problem."""
    env = dict(os.environ if env is None else env)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([(source, f"not valid YAML: {exc}")]) from exc
    except ValueError as exc:           # PyYAML builds an unquoted 2026-13-01 as a date and fails so
        raise ConfigError([(source, f"not valid YAML: a date that is none ({exc})")]) from exc
    if not isinstance(raw, dict):
        raise ConfigError([(source, "must be a mapping with hub, channels, locations, systems")])
    problems: list[tuple[str, str]] = []
    data = _resolve(raw, "", env, problems)
    hub = data.get("hub") if isinstance(data.get("hub"), dict) else None
    if hub is not None:
        for key, var in (("database_url", "HUB_DATABASE_URL"), ("broker_url", "HUB_BROKER_URL"),
                         ("redis_url", "HUB_REDIS_URL")):
            if env.get(var):
                hub[key] = env[var]
        if env.get("HUB_HTTP_PORT"):
            hub["http"] = {**(hub.get("http") or {}), "port": env["HUB_HTTP_PORT"]}
        if env.get("HUB_GATEWAY_SERVER"):
            hub["http"] = {**(hub.get("http") or {}), "server": env["HUB_GATEWAY_SERVER"]}
    try:
        cfg = HubConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append((_loc(err["loc"], data), err["msg"].removeprefix("Value error, ")))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return cfg


def load_config(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> HubConfig:
    """Read and validate the config file (default: the repository's config.yaml, or $HUB_CONFIG)."""
    chosen = Path(path or os.environ.get("HUB_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        text = chosen.read_text()
    except OSError as exc:
        raise ConfigError([(str(chosen), f"cannot read: {exc.strerror}")]) from exc
    return parse_config(text, env=env, source=str(chosen))


SECRET_WORDS = ("key", "secret", "password", "token", "salt", "checkword")


def secret_values(cfg: HubConfig) -> list[str]:
    """Every key and secret the config holds (callers' keys, each system's credentials), for the log
    filter to redact verbatim wherever they turn up."""
    keys = [ch.key for ch in cfg.channels] + [loc.pos_key or "" for loc in cfg.stores] + [cfg.hub.ops_key]
    for system in cfg.systems.values():
        for name, value in (system.model_extra or {}).items():
            if isinstance(value, str) and any(w in name for w in SECRET_WORDS):
                keys.append(value)
    return [k for k in keys if k]

"""Load and validate config.yaml.

Every problem is reported with the key path that holds it, so `hub check-config` can
list them all at once. Secrets must be ${ENV_VAR} references, never literals.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    pickup_code_lock_minutes: int = Field(30, gt=0)
    max_courier_bookings: int = Field(3, gt=0)         # riders booked for one order before an operator decides
    courier_quote_deadline_s: float = Field(3.0, gt=0)  # couriers asked in parallel; a later answer is no quote
    ops_key: str = Field(min_length=8)
    reconcile_interval_s: int = Field(300, ge=10)     # channel stock reconciliation, the safety net
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


class ChannelConfig(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_\-]+$")
    name: str
    key: str = Field(min_length=8)
    safety_stock: int = Field(0, ge=0)
    publish_to: str | None = None
    # The system that takes this channel's payments; absent: the single payment system.
    payment: str | None = None


class OpeningHours(_Strict):
    """A store's daily hours, local time. `close` before `open` runs past midnight (a convenience store's
    07:00-02:00 is open until 02:00 the next morning); `close` itself is closed. open == close is refused
    as ambiguous (never open, or always?): a store open around the clock leaves opening_hours out."""
    open: str
    close: str

    @field_validator("open", "close")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _TIME.match(v):
            raise ValueError("must be HH:MM")
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> OpeningHours:
        if self.open == self.close:
            raise ValueError(f"open and close are both {self.open}: leave opening_hours out for a store "
                             "open around the clock")
        return self


class DispatchPolicy(_Strict):
    """When a store's delivery rider is booked: when the pick is complete (the default a retailer expects: the
    rider does not wait at the counter), at payment, or `delay_s` after payment (the platforms' 延迟发单)."""
    book: Literal["at_payment", "at_pick_complete", "after_payment"] = "at_pick_complete"
    delay_s: int = Field(0, ge=0, le=86_400)


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
    safety_stock: int = Field(0, ge=0)
    pos_key: str | None = None
    phone: str = Field("", pattern=r"^[0-9+\- ]*$")     # the sender's phone on waybills (couriers want one)
    # The couriers (systems) that serve this location, in the order asked; absent: every one configured.
    couriers: list[str] | None = None
    # How the booked courier is chosen among them (hub/domain/courier_choice.py): the first that quotes
    # (preference), the cheapest quote, or the soonest promised pickup (fastest).
    courier_rule: Literal["preference", "cheapest", "fastest"] = "preference"
    dispatch: DispatchPolicy = DispatchPolicy()
    capacity: StoreCapacity | None = None          # absent: no cap

    @model_validator(mode="after")
    def _store_needs(self) -> LocationConfig:
        if self.kind == "store" and not self.pos_key:
            raise ValueError("a store needs a pos_key")
        if self.kind == "warehouse" and (self.pickup or self.delivery_radius_km):
            raise ValueError("a warehouse offers neither pickup nor local delivery")
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
        return {k: _resolve(v, f"{path}.{k}" if path else str(k), env, problems) for k, v in node.items()}
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

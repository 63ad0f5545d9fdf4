"""Source selection: which location serves an order, and why every other one did not.

Pure functions over the configured locations and a snapshot of available stock, so a
decision can be tested, replayed and explained without a database.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, time
from typing import Protocol

from hub.domain.errors import InsufficientStock, NoRoute, StoreCannotFill, UnknownLocation
from hub.domain.geo import distance_km
from hub.domain.model import Address, FulfillmentType, OrderLine


# What routing reads of the configuration, as the domain's own terms: hub/config.py's models satisfy these
# (mypy checks it where services pass a HubConfig), so the domain imports nothing above it.
class OpeningHours(Protocol):
    @property
    def open(self) -> str: ...
    @property
    def close(self) -> str: ...


class LocationConfig(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def lat(self) -> float: ...
    @property
    def lng(self) -> float: ...
    @property
    def pickup(self) -> bool: ...
    @property
    def priority(self) -> int: ...
    @property
    def delivery_radius_km(self) -> float: ...
    @property
    def opening_hours(self) -> OpeningHours | None: ...


class RoutingRules(Protocol):
    @property
    def tie_break(self) -> Sequence[str]: ...
    @property
    def allow_split_express(self) -> bool: ...


class HubConfig(Protocol):
    @property
    def routing(self) -> RoutingRules: ...
    @property
    def stores(self) -> Sequence[LocationConfig]: ...
    @property
    def warehouses(self) -> Sequence[LocationConfig]: ...
    def location(self, location_id: str) -> LocationConfig | None: ...


@dataclass
class CandidateVerdict:
    location_id: str
    accepted: bool
    reason: str
    distance_km: float | None = None


@dataclass
class RoutingDecision:
    requested: FulfillmentType
    fulfillment: FulfillmentType                     # may be express when delivery fell back
    allocations: list[tuple[str, str, int]]          # (sku, location_id, qty)
    location_id: str | None
    candidates: list[CandidateVerdict] = field(default_factory=list)
    rule: str = ""

    def to_dict(self) -> dict:
        return {
            "requested": str(self.requested), "fulfillment": str(self.fulfillment),
            "location_id": self.location_id, "rule": self.rule,
            "allocations": [{"sku": s, "location_id": loc, "qty": q} for s, loc, q in self.allocations],
            "candidates": [asdict(c) for c in self.candidates],
        }


Stock = dict[str, dict[str, int]]   # location_id -> sku -> available


def _wanted(lines: list[OrderLine]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        out[line.sku] = out.get(line.sku, 0) + line.qty
    return out


def _shortages(wanted: dict[str, int], held: dict[str, int]) -> list[str]:
    return [f"short of {sku} (wants {qty}, has {held.get(sku, 0)})"
            for sku, qty in sorted(wanted.items()) if held.get(sku, 0) < qty]


def is_open(loc: LocationConfig, local_time: time) -> bool:
    """Open from `open` up to (not at) `close`; hours whose close comes before their open run past
    midnight, so 22:00-06:00 is open at 23:00 and 01:00, closed at 06:00 and 07:00."""
    if loc.opening_hours is None:
        return True
    opens = time.fromisoformat(loc.opening_hours.open)
    closes = time.fromisoformat(loc.opening_hours.close)
    if opens < closes:
        return opens <= local_time < closes
    return local_time >= opens or local_time < closes        # overnight: the evening, or the early morning


def _all_from(location_id: str, wanted: dict[str, int]) -> list[tuple[str, str, int]]:
    return [(sku, location_id, qty) for sku, qty in sorted(wanted.items())]


def route_pickup(cfg: HubConfig, lines: list[OrderLine], store_id: str | None, stock: Stock,
                 refused: dict[str, str] | None = None) -> RoutingDecision:
    """The buyer chose the store: it must offer pickup, take orders now (`refused`: store -> why not:
    paused, at capacity) and hold every line."""
    loc = cfg.location(store_id or "")
    if loc is None or loc.kind != "store":
        raise UnknownLocation(f"unknown store {store_id!r}")
    wanted = _wanted(lines)
    if not loc.pickup:
        raise NoRoute(f"store {loc.id} does not offer pickup",
                      [asdict(CandidateVerdict(loc.id, False, "pickup not offered"))])
    if why := (refused or {}).get(loc.id):
        raise NoRoute(f"store {loc.id} takes no orders now: {why}", [asdict(CandidateVerdict(loc.id, False, why))])
    held = stock.get(loc.id, {})
    short = [{"sku": sku, "location_id": loc.id, "wanted": qty, "available": held.get(sku, 0)}
             for sku, qty in sorted(wanted.items()) if held.get(sku, 0) < qty]
    if short:
        raise InsufficientStock(short)
    return RoutingDecision(FulfillmentType.PICKUP, FulfillmentType.PICKUP, _all_from(loc.id, wanted), loc.id,
                           [CandidateVerdict(loc.id, True, "chosen by the buyer; holds every line")],
                           "buyer's store")


def route_at_store(cfg: HubConfig, kind: FulfillmentType, lines: list[OrderLine], store_id: str | None,
                   stock: Stock, now_local: datetime, refused: dict[str, str] | None = None) -> RoutingDecision:
    """The channel chose the store (a platform's order names it): that store, open now, taking orders and
    holding every line, or StoreCannotFill with the cause the channel is told. No distance or radius check:
    the platform drew its own delivery area around the store."""
    loc = cfg.location(store_id or "")
    if loc is None or loc.kind != "store":
        raise UnknownLocation(f"unknown store {store_id!r}")

    def cannot(cause: str, why: str) -> StoreCannotFill:
        return StoreCannotFill(loc.id, cause, f"store {loc.id} cannot fill the order: {why}",
                               [asdict(CandidateVerdict(loc.id, False, why))])

    wanted = _wanted(lines)
    if kind == FulfillmentType.PICKUP and not loc.pickup:
        raise cannot("other", "pickup not offered")
    if loc.opening_hours is not None and not is_open(loc, now_local.time()):
        raise cannot("closed", f"closed now (open {loc.opening_hours.open}-{loc.opening_hours.close})")
    if why := (refused or {}).get(loc.id):
        raise cannot("busy", why)
    if short := _shortages(wanted, stock.get(loc.id, {})):
        raise cannot("sold_out", "; ".join(short))
    return RoutingDecision(kind, kind, _all_from(loc.id, wanted), loc.id,
                           [CandidateVerdict(loc.id, True, "chosen by the channel; holds every line")],
                           "channel's store")


def _sort_key(cfg: HubConfig, loc: LocationConfig, dist: float, wanted: dict[str, int], stock: Stock) -> tuple:
    keys: list[float] = []
    for rule in cfg.routing.tie_break:
        if rule == "distance":
            keys.append(round(dist, 3))
        elif rule == "stock":
            keys.append(-sum(stock.get(loc.id, {}).get(s, 0) for s in wanted))
        elif rule == "priority":
            keys.append(loc.priority)
    return (*keys, loc.id)


def route_delivery(cfg: HubConfig, lines: list[OrderLine], address: Address, stock: Stock,
                   now_local: datetime, refused: dict[str, str] | None = None) -> RoutingDecision:
    """Nearest open store within its delivery radius, taking orders now (not in `refused`: store -> why
    not) and holding every line; else express."""
    wanted = _wanted(lines)
    verdicts: list[CandidateVerdict] = []
    fit: list[tuple[tuple, LocationConfig, CandidateVerdict]] = []
    for loc in cfg.stores:
        dist = round(distance_km(address.lat, address.lng, loc.lat, loc.lng), 2)
        v = CandidateVerdict(loc.id, False, "", dist)
        verdicts.append(v)
        if loc.delivery_radius_km <= 0:
            v.reason = "no local delivery"
        elif dist > loc.delivery_radius_km:
            v.reason = f"too far ({dist:.2f} km > {loc.delivery_radius_km:g} km radius)"
        elif loc.opening_hours is not None and not is_open(loc, now_local.time()):
            v.reason = f"closed now (open {loc.opening_hours.open}-{loc.opening_hours.close})"
        elif why := (refused or {}).get(loc.id):
            v.reason = why
        elif short := _shortages(wanted, stock.get(loc.id, {})):
            v.reason = "; ".join(short)
        else:
            fit.append((_sort_key(cfg, loc, dist, wanted, stock), loc, v))
    if fit:
        fit.sort(key=lambda t: t[0])
        _, best, chosen = fit[0]
        chosen.accepted, chosen.reason = True, "nearest store in radius holding every line"
        for _, _, other in fit[1:]:
            other.reason = f"can serve, but ranked after {best.id} by {'/'.join(cfg.routing.tie_break)}"
        return RoutingDecision(FulfillmentType.DELIVERY, FulfillmentType.DELIVERY, _all_from(best.id, wanted),
                               best.id, verdicts, "tie break: " + ", ".join(cfg.routing.tie_break))
    try:
        decision = route_express(cfg, lines, address, stock)
    except NoRoute as exc:
        raise NoRoute("no store can deliver and no warehouse can ship every line",
                      [asdict(v) for v in verdicts] + exc.reasons) from None
    decision.requested = FulfillmentType.DELIVERY
    decision.candidates = verdicts + decision.candidates
    decision.rule = "no store can deliver: express from a warehouse"
    return decision


def route_express(cfg: HubConfig, lines: list[OrderLine], address: Address | None, stock: Stock) -> RoutingDecision:
    """A warehouse holding every line (nearest first); split across warehouses only if allowed."""
    wanted = _wanted(lines)
    verdicts: list[CandidateVerdict] = []
    fit: list[tuple[tuple, LocationConfig, CandidateVerdict]] = []
    for loc in cfg.warehouses:
        dist = round(distance_km(address.lat, address.lng, loc.lat, loc.lng), 2) if address else None
        v = CandidateVerdict(loc.id, False, "", dist)
        verdicts.append(v)
        if short := _shortages(wanted, stock.get(loc.id, {})):
            v.reason = "; ".join(short)
        else:
            fit.append(((dist or 0.0, loc.priority, loc.id), loc, v))
    if fit:
        fit.sort(key=lambda t: t[0])
        _, best, chosen = fit[0]
        chosen.accepted, chosen.reason = True, "warehouse holding every line"
        for _, _, other in fit[1:]:
            other.reason = f"can serve, but {best.id} is nearer"
        return RoutingDecision(FulfillmentType.EXPRESS, FulfillmentType.EXPRESS, _all_from(best.id, wanted),
                               best.id, verdicts, "nearest warehouse holding every line")
    if cfg.routing.allow_split_express:
        split = _split(cfg, wanted, stock)
        if split:
            for v in verdicts:
                if any(loc == v.location_id for _, loc, _ in split):
                    v.accepted, v.reason = True, "part of a split shipment"
            return RoutingDecision(FulfillmentType.EXPRESS, FulfillmentType.EXPRESS, split, None, verdicts,
                                   "split across warehouses")
    raise NoRoute("no location can serve every line", [asdict(v) for v in verdicts])


def _split(cfg: HubConfig, wanted: dict[str, int], stock: Stock) -> list[tuple[str, str, int]] | None:
    out: list[tuple[str, str, int]] = []
    for sku, qty in sorted(wanted.items()):
        left = qty
        for loc in sorted(cfg.warehouses, key=lambda w: (-stock.get(w.id, {}).get(sku, 0), w.priority)):
            take = min(left, stock.get(loc.id, {}).get(sku, 0))
            if take > 0:
                out.append((sku, loc.id, take))
                left -= take
            if left == 0:
                break
        if left:
            return None
    return out

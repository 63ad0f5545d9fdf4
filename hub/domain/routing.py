"""Source selection: which location serves an order, and why every other one did not.

Pure functions over the configured locations and a snapshot of available stock, so a
decision can be tested, replayed and explained without a database.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Protocol

from hub.domain import hours
from hub.domain.errors import InsufficientStock, NoRoute, StoreCannotFill, UnknownLocation
from hub.domain.geo import distance_km, in_polygon
from hub.domain.model import Address, FulfillmentType, OrderLine


# What routing reads of the configuration, as the domain's own terms: hub/config.py's models satisfy these
# (mypy checks it where services pass a HubConfig), so the domain imports nothing above it.
class DeliveryArea(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def min_order_fen(self) -> int: ...
    @property
    def delivery_fee_fen(self) -> int: ...
    @property
    def polygon(self) -> Sequence[tuple[float, float]]: ...


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
    def opening_hours(self) -> hours.Calendar | None: ...
    @property
    def ships_express(self) -> bool: ...
    @property
    def delivery_areas(self) -> Sequence[DeliveryArea]: ...


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
    area: str | None = None                  # the delivery area the address is in (a store with areas)
    delivery_fee_fen: int | None = None      # that area's fee


@dataclass(frozen=True)
class AreaMatch:
    """Where an address falls among a store's delivery areas: the area that serves it, or why none does."""
    area: DeliveryArea | None
    reason: str


@dataclass
class RoutingDecision:
    requested: FulfillmentType
    fulfillment: FulfillmentType                     # may be express when delivery fell back
    allocations: list[tuple[str, str, int]]          # (sku, location_id, qty)
    location_id: str | None
    candidates: list[CandidateVerdict] = field(default_factory=list)
    rule: str = ""
    area: str | None = None                  # the chosen store's delivery area, if it has areas
    delivery_fee_fen: int | None = None      # that area's delivery fee
    ready_from: str | None = None            # a pickup at a store closed now: when it opens (ISO, local)

    def to_dict(self) -> dict:
        extra = {k: v for k, v in (("area", self.area), ("delivery_fee_fen", self.delivery_fee_fen),
                                   ("ready_from", self.ready_from)) if v is not None}
        return {
            "requested": str(self.requested), "fulfillment": str(self.fulfillment),
            "location_id": self.location_id, "rule": self.rule, **extra,
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


def is_open(loc: LocationConfig, at: datetime) -> bool:
    """Whether the location is open at `at` (local time) by its calendar (hub/domain/hours.py); none: always."""
    return hours.is_open(loc.opening_hours, at)


def basket_fen(lines: Sequence[OrderLine]) -> int:
    """The lines' value at their prices, before discounts: what an area's minimum order is compared with."""
    return sum(line.qty * line.unit_price_fen for line in lines)


def match_area(areas: Sequence[DeliveryArea], lat: float, lng: float, basket: int) -> AreaMatch:
    """The first area (in config order: overlapping areas are the retailer's priority) holding the point whose
    minimum order the basket meets; a point on an edge is in the area (hub/domain/geo.py `in_polygon`)."""
    holding = [a for a in areas if in_polygon(lat, lng, a.polygon)]
    if not holding:
        return AreaMatch(None, f"outside every delivery area ({', '.join(a.name for a in areas)})")
    for area in holding:
        if basket >= area.min_order_fen:
            return AreaMatch(area, f"in delivery area {area.name} (fee {area.delivery_fee_fen} fen)")
    low = min(holding, key=lambda a: a.min_order_fen)
    return AreaMatch(None, f"below the minimum order of delivery area {low.name} ({low.min_order_fen} fen; "
                           f"the basket is {basket} fen)")


def _all_from(location_id: str, wanted: dict[str, int]) -> list[tuple[str, str, int]]:
    return [(sku, location_id, qty) for sku, qty in sorted(wanted.items())]


def route_pickup(cfg: HubConfig, lines: list[OrderLine], store_id: str | None, stock: Stock,
                 refused: dict[str, str] | None = None, now_local: datetime | None = None) -> RoutingDecision:
    """The buyer chose the store: it must offer pickup, take orders now (`refused`: store -> why not:
    paused, at capacity), open within the calendar's horizon (closed now: the order is ready from its next
    opening, `ready_from`) and hold every line."""
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
    ready_from = None
    reason = "chosen by the buyer; holds every line"
    if now_local is not None and not hours.is_open(loc.opening_hours, now_local):
        opens = hours.next_open(loc.opening_hours, now_local)
        if opens is None:
            why = f"closed for the next {hours.HORIZON_DAYS} days"
            raise NoRoute(f"store {loc.id} is {why}", [asdict(CandidateVerdict(loc.id, False, why))])
        ready_from = opens.isoformat()
        reason = f"chosen by the buyer; holds every line; closed now, opens {opens:%Y-%m-%d %H:%M}"
    if short:
        raise InsufficientStock(short)
    return RoutingDecision(FulfillmentType.PICKUP, FulfillmentType.PICKUP, _all_from(loc.id, wanted), loc.id,
                           [CandidateVerdict(loc.id, True, reason)], "buyer's store", ready_from=ready_from)


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
    if not is_open(loc, now_local):
        raise cannot("closed", f"closed now ({hours.describe(loc.opening_hours, now_local.date())})")
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
    """Nearest open store delivering to the address (in one of its areas, meeting that area's minimum order;
    a store without areas: within its radius), taking orders now (not in `refused`: store -> why not) and
    holding every line; else express."""
    wanted = _wanted(lines)
    basket = basket_fen(lines)
    verdicts: list[CandidateVerdict] = []
    fit: list[tuple[tuple, LocationConfig, CandidateVerdict]] = []
    for loc in cfg.stores:
        dist = round(distance_km(address.lat, address.lng, loc.lat, loc.lng), 2)
        v = CandidateVerdict(loc.id, False, "", dist)
        verdicts.append(v)
        match = match_area(loc.delivery_areas, address.lat, address.lng, basket) if loc.delivery_areas else None
        if match is not None and match.area is not None:
            v.area, v.delivery_fee_fen = match.area.name, match.area.delivery_fee_fen
        if match is not None and match.area is None:
            v.reason = match.reason
        elif match is None and loc.delivery_radius_km <= 0:
            v.reason = "no local delivery"
        elif match is None and dist > loc.delivery_radius_km:
            v.reason = f"too far ({dist:.2f} km > {loc.delivery_radius_km:g} km radius)"
        elif not hours.is_open(loc.opening_hours, now_local):
            v.reason = f"closed now ({hours.describe(loc.opening_hours, now_local.date())})"
        elif why := (refused or {}).get(loc.id):
            v.reason = why
        elif short := _shortages(wanted, stock.get(loc.id, {})):
            v.reason = "; ".join(short)
        else:
            fit.append((_sort_key(cfg, loc, dist, wanted, stock), loc, v))
    if fit:
        fit.sort(key=lambda t: t[0])
        _, best, chosen = fit[0]
        chosen.accepted = True
        chosen.reason = (f"nearest store delivering to delivery area {chosen.area} (fee {chosen.delivery_fee_fen} "
                         "fen), holding every line" if chosen.area else "nearest store in radius holding every line")
        for _, _, other in fit[1:]:
            other.reason = f"can serve, but ranked after {best.id} by {'/'.join(cfg.routing.tie_break)}"
        return RoutingDecision(FulfillmentType.DELIVERY, FulfillmentType.DELIVERY, _all_from(best.id, wanted),
                               best.id, verdicts, "tie break: " + ", ".join(cfg.routing.tie_break),
                               area=chosen.area, delivery_fee_fen=chosen.delivery_fee_fen)
    try:
        decision = route_express(cfg, lines, address, stock, refused)
    except NoRoute as exc:
        raise NoRoute("no store can deliver and no warehouse can ship every line",
                      [asdict(v) for v in verdicts] + exc.reasons) from None
    decision.requested = FulfillmentType.DELIVERY
    decision.candidates = verdicts + decision.candidates
    from_store = decision.location_id in {x.id for x in cfg.stores}
    decision.rule = "no store can deliver: express from a " + ("store shipping parcels" if from_store else "warehouse")
    return decision


def route_express(cfg: HubConfig, lines: list[OrderLine], address: Address | None, stock: Stock,
                  refused: dict[str, str] | None = None) -> RoutingDecision:
    """A warehouse holding every line (nearest first); else a store that ships parcels (`ships_express`), takes
    orders now (not in `refused`) and holds every line, nearest first — it picks the order before the waybill is
    booked; split across warehouses only if allowed."""
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
    for loc in cfg.stores:
        if not loc.ships_express:
            continue
        dist = round(distance_km(address.lat, address.lng, loc.lat, loc.lng), 2) if address else None
        v = CandidateVerdict(loc.id, False, "", dist)
        verdicts.append(v)
        if why := (refused or {}).get(loc.id):
            v.reason = why
        elif short := _shortages(wanted, stock.get(loc.id, {})):
            v.reason = "; ".join(short)
        else:
            fit.append(((dist or 0.0, loc.priority, loc.id), loc, v))
    if fit:
        fit.sort(key=lambda t: t[0])
        _, best, chosen = fit[0]
        chosen.accepted, chosen.reason = True, "store shipping parcels, holding every line"
        for _, _, other in fit[1:]:
            other.reason = f"can ship, but {best.id} is nearer"
        return RoutingDecision(FulfillmentType.EXPRESS, FulfillmentType.EXPRESS, _all_from(best.id, wanted),
                               best.id, verdicts, "no warehouse holds every line: nearest store shipping parcels")
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
